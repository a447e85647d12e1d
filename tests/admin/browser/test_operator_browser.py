"""The operator's view in a real browser: Enable/Disable, mass retry, errors visible on the dashboard,
tables that fit a laptop screen, and no page that loads anything from outside the instance."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone
from playwright.sync_api import expect

from mcom.service_bus import integration
from mcom.service_bus.models import LoggedMessage


def _message(**fields: Any) -> LoggedMessage:
    now = timezone.now()
    values: dict[str, Any] = {
        "direction": LoggedMessage.OUT, "topic": "magento.sales.order_management.create",
        "message_id": f"b-{LoggedMessage.objects.count()}", "entity_key": "order:1", "payload": json.dumps({}),
        "status": LoggedMessage.COMPLETE, "created_at": now, "updated_at": now,
    }
    values.update(fields)
    return LoggedMessage.objects.create(**values)


def test_disable_and_enable_the_integration(page: Any, shot: Any) -> None:
    try:
        page.goto("/admin/mcom/integration/")
        page.get_by_label("Reason").fill("OMS maintenance")
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("#mcom-integration-state")).to_contain_text("Disabled")
        assert not integration.enabled()
        page.goto("/admin/mcom/")
        expect(page.locator("#mcom-integration-state")).to_contain_text("OMS maintenance")
        shot(page, "30-dashboard-integration-disabled")
        page.goto("/admin/mcom/integration/")
        page.get_by_role("button", name="Enable").click()
        expect(page.locator("#mcom-integration-state")).to_contain_text("Enabled")
        assert integration.enabled()
    finally:
        integration.enable(by="test")


def test_mass_retry_of_selected_messages(page: Any, shot: Any) -> None:
    failed = [_message(status=LoggedMessage.ERROR, entity_key=f"order:{n}", last_error="OmsUnavailable: down")
              for n in range(3)]
    page.goto("/admin/mcom/messages/?status=error")
    for msg in failed[:2]:
        page.get_by_label(f"Select message #{msg.pk}").check()
    page.get_by_label("Action:").select_option("retry")
    shot(page, "31-message-log-mass-retry")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("2 messages queued for retry.")
    statuses = dict(LoggedMessage.objects.filter(pk__in=[m.pk for m in failed]).values_list("pk", "status"))
    assert [statuses[m.pk] for m in failed] == [LoggedMessage.RETRY, LoggedMessage.RETRY, LoggedMessage.ERROR]


def test_dashboard_shows_errors_next_to_thousands_of_messages(page: Any, shot: Any) -> None:
    now = timezone.now()
    LoggedMessage.objects.bulk_create([
        LoggedMessage(direction=LoggedMessage.OUT, topic="t.order", message_id=f"bulk-{i}", entity_key=f"order:{i}",
                      payload="{}", status=LoggedMessage.COMPLETE, created_at=now, updated_at=now)
        for i in range(5000)
    ])
    _message(direction=LoggedMessage.IN, topic="t.in", created_at=now)
    _message(direction=LoggedMessage.IN, topic="t.in", created_at=now)
    _message(status=LoggedMessage.ERROR, created_at=now - timedelta(hours=1))
    page.goto("/admin/mcom/")
    chart = page.get_by_role("img", name="Messages per hour, last 24 hours")
    expect(chart).to_be_visible()
    errors = page.locator("rect.errbar").nth(22)
    outgoing = page.locator("rect.out").nth(23)
    incoming = page.locator("rect.in").nth(23)
    err_box, out_box, in_box = errors.bounding_box(), outgoing.bounding_box(), incoming.bounding_box()
    assert err_box is not None
    assert out_box is not None
    assert in_box is not None
    assert err_box["height"] >= 10
    assert in_box["height"] >= 20
    assert out_box["height"] > in_box["height"]
    expect(page.locator("circle.errdot")).to_have_count(1)
    shot(page, "32-dashboard-errors-visible")


def test_order_pages_fit_a_1366_px_screen(page: Any, shot: Any) -> None:
    from mcom.commerce.models import Order, OrderItem, Store

    store = Store.objects.create(code="main", name="Main store")
    order = Order.objects.create(increment_id="000000042", store=store, customer_email="long.name@example.com",
                                 grand_total=Decimal("31.34"), oms_export_state=Order.EXPORT_EXPORTED)
    for n in range(3):
        OrderItem.objects.create(order=order, sku=f"24-MB0{n}-LONGER-SKU", name=f"Joust Duffle Bag {n}",
                                 qty_ordered=2, price=Decimal("34.00"), row_total_incl_tax=Decimal("68.00"))
    page.set_viewport_size({"width": 1366, "height": 900})
    for url, name in (("/admin/commerce/order/", "33-order-list-1366"),
                      (f"/admin/commerce/order/{order.pk}/change/", "34-order-page-1366")):
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        shot(page, name)
        assert width <= 1366, f"{url} is {width} px wide"


def _admin_urls() -> list[str]:
    """Every page of the admin: the index, the MCOM pages, each model's list, add and a change page."""
    from django.contrib import admin
    from django.urls import reverse

    from mcom.adminui.menu import MENU

    urls = ["/admin/", "/admin/password_change/", "/api/docs"] + [item.url for item in MENU]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        urls.append(reverse(f"admin:{info[0]}_{info[1]}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{info[0]}_{info[1]}_change", args=[first.pk]))
    first_message = LoggedMessage.objects.order_by("pk").first()
    if first_message is not None:
        urls.append(reverse("mcom_admin:message", args=[first_message.pk]))
    return urls


def test_no_page_loads_anything_from_outside_the_instance(page: Any, connector: Any) -> None:
    from mcom.commerce import sampledata

    sampledata.deploy(products=3, orders=1, stores=1, seed=3)
    _message(status=LoggedMessage.ERROR, last_error="x")
    origin = urlsplit(connector.url)
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((page.url, r.url)))
    visited = 0
    for url in _admin_urls():
        response = page.goto(url)
        assert response is not None
        if response.status == 403:  # add pages of read-only models
            continue
        assert response.status == 200, f"{url}: HTTP {response.status}"
        page.wait_for_load_state("networkidle")
        visited += 1
    assert visited >= 30
    outside = [(at, u) for at, u in requests
               if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != origin.netloc]
    assert outside == [], outside
    page.goto("/api/docs")
    expect(page.locator("#swagger-ui .info")).to_be_visible()  # Swagger UI came from the instance's static files
