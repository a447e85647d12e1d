"""The MCOM section in a real browser: every page, Register, configuration, retry, catalog export."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from playwright.sync_api import expect

from mcom.service_bus.models import LoggedMessage

MENU = [
    ("Integration", "Integration", "02-integration"),
    ("Configuration", "Configuration", "03-configuration"),
    ("Message log", "Message log", "04-message-log"),
    ("Catalog export", "Catalog export", "06-catalog-export"),
    ("Change log", "Change log", "07-change-log"),
    ("System report", "System report", "08-system-report"),
    ("Connector log", "Connector log", "09-connector-log"),
]


def _sidebar(tab: Any) -> Any:
    return tab.get_by_role("navigation", name="Sidebar")


def _sample_messages() -> LoggedMessage:
    from django.utils import timezone

    now = timezone.now()
    for i in range(6):
        LoggedMessage.objects.create(
            direction=LoggedMessage.IN if i % 2 else LoggedMessage.OUT,
            topic="magento.inventory.source_stock_management.update"
            if i % 2
            else "magento.catalog.product_management.updated",
            message_id=f"sample-{i}",
            entity_key=f"sku:24-MB0{i}",
            payload=json.dumps({"sku": f"24-MB0{i}", "qty": i}),
            status=LoggedMessage.COMPLETE,
            created_at=now - timezone.timedelta(hours=i * 3),
        )
    return LoggedMessage.objects.create(
        direction=LoggedMessage.IN,
        topic="magento.sales.order_management.updated",
        message_id="sample-error",
        entity_key="order:000000009",
        payload=json.dumps({"order": {"id": "000000009", "status": "SHIPPED"}}),
        status=LoggedMessage.ERROR,
        attempts=10,
        last_error="InvalidPayload: order 000000009 is unknown",
        created_at=now,
    )


def test_every_mcom_page_opens_from_the_menu(page: Any, shot: Any) -> None:
    failed = _sample_messages()
    log = logging.getLogger("mcom.demo")
    log.info("registered mdc at http://127.0.0.1:8000/mcom/service-bus (8 topics, admin)")
    log.warning("order 000000009: OMS unavailable, retry in 20 s")
    log.error("message #%s parked as error: order 000000009 is unknown", failed.pk)
    expect(page.locator(".app-mcom")).to_be_visible()
    shot(page, "00-admin-index")
    page.get_by_role("link", name="MCOM", exact=True).first.click()
    expect(page.get_by_role("heading", name="MCOM dashboard", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name="Messages per hour, last 24 hours")).to_be_visible()
    shot(page, "01-dashboard")
    for link, heading, name in MENU:
        _sidebar(page).get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(_sidebar(page).get_by_role("link", name=link, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        shot(page, name)
    page.get_by_label("Minimum level").select_option("ERROR")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("log")).to_contain_text("parked as error")
    expect(page.get_by_role("log")).not_to_contain_text("OMS unavailable")
    _sidebar(page).get_by_role("link", name="Message log", exact=True).click()
    page.get_by_role("link", name=f"#{failed.pk}").click()
    expect(page.get_by_role("heading", name=f"Message #{failed.pk}")).to_be_visible()
    expect(page.locator("#mcom-status")).to_have_text("Error")
    shot(page, "05-message-detail")


def test_register_against_the_sandbox(page: Any, wired: Any, shot: Any) -> None:
    page.goto("/admin/mcom/integration/")
    page.get_by_role("button", name="Register").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Registered “mdc”")
    expect(page.locator("#mcom-registration-state")).to_contain_text("Registered")
    expect(page.locator("#mcom-registration-state")).to_contain_text("(admin)")
    page.get_by_role("button", name="Check connection").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Connection OK")
    shot(page, "02-integration-registered")
    assert any(r.get("id") == "mdc" for r in wired.sandbox.api.registrations())


def test_change_a_configuration_value_and_see_it_applied(page: Any, shot: Any) -> None:
    from mcom.commerce import config
    from mcom.commerce.models import Store

    Store.objects.create(code="default", name="Default Store View")
    page.goto("/admin/mcom/configuration/")
    page.get_by_label("Sales Channel ID").fill("luma-channel")
    page.get_by_label("Order statuses to export").select_option(["pending", "processing"])
    page.get_by_label("Keep messages for (days)").fill("14")
    page.get_by_label("Base URL").fill("shop.example.com")
    page.get_by_role("button", name="Save Config").click()
    expect(page.locator(".errornote")).to_contain_text("Please correct the errors below.")
    expect(page.locator(".field-web__base_url .errorlist")).to_contain_text("not an http(s) URL")
    shot(page, "03-configuration-error")
    assert config.get("mcom/general/sales_channel_id") == ""
    page.get_by_label("Base URL").fill("https://shop.example.com/")
    page.get_by_role("button", name="Save Config").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Configuration saved")
    expect(page.get_by_label("Sales Channel ID")).to_have_value("luma-channel")
    assert config.get("mcom/general/sales_channel_id") == "luma-channel"
    assert config.get("mcom/orders/export_statuses") == ["pending", "processing"]
    assert config.get("mcom/message_log/prune_days") == 14
    assert config.get("web/base_url") == "https://shop.example.com"

    page.get_by_label("Scope").select_option("default")
    page.get_by_role("button", name="Switch scope").click()
    channel = page.get_by_label("Sales Channel ID")
    expect(channel).to_be_disabled()  # inherits "use default"
    page.locator("#id_mcom__general__sales_channel_id__use_default").uncheck()
    channel.fill("luma-store")
    page.get_by_role("button", name="Save Config").click()
    expect(page.locator(".messagelist .success")).to_contain_text("store “default”")
    shot(page, "03-configuration-store-scope")
    assert config.get("mcom/general/sales_channel_id", "default") == "luma-store"
    assert config.get("mcom/general/sales_channel_id") == "luma-channel"


def test_retry_a_failed_message_and_see_it_complete(page: Any, wired: Any, env: Any, shot: Any) -> None:
    from mcom.catalog import services
    from mcom.commerce.models import Product
    from mcom.service_bus import worker

    env(queue__max_attempts=1)  # one failure parks the message as "error"
    product = Product.objects.create(sku="MB-RETRY", name="Retry bag")
    [log_id] = services.queue_products([product])
    wired.sandbox.api.faults(fail_next=1)
    worker.run_until_idle()
    assert LoggedMessage.objects.get(pk=log_id).status == LoggedMessage.ERROR

    page.goto("/admin/mcom/messages/?status=error")
    page.get_by_role("link", name=f"#{log_id}").click()
    expect(page.locator("#mcom-status")).to_have_text("Error")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".messagelist .success")).to_contain_text("is due again")
    worker.run_until_idle()  # what cron does within seconds in `mcom serve`
    page.reload()
    expect(page.locator("#mcom-status")).to_have_text("Complete")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    shot(page, "05-message-retried")
    assert wired.sandbox.api.product("MB-RETRY")["sku"] == "MB-RETRY"


def test_start_and_cancel_a_catalog_export(page: Any, wired: Any, shot: Any) -> None:
    from mcom.adminui import background
    from mcom.catalog.models import CatalogExportTask
    from mcom.commerce.models import Product

    Product.objects.bulk_create([Product(sku=f"EXP-{i:03d}", name=f"Export {i}") for i in range(30)])
    page.goto("/admin/mcom/catalog-export/")
    page.get_by_role("button", name="Schedule export").click()
    expect(page.locator(".messagelist .success")).to_contain_text("scheduled")
    expect(page.locator("#mcom-export-status")).to_have_text("Pending")
    shot(page, "06-catalog-export-pending")
    page.get_by_role("button", name="Cancel export").click()
    expect(page.locator(".messagelist .success")).to_contain_text("cancelled")
    expect(page.locator("#mcom-export-status")).to_have_text("Cancelled")

    page.get_by_role("button", name="Export full catalog").click()
    expect(page.locator(".messagelist .success")).to_contain_text("started")
    background.wait()
    expect(page.locator("#mcom-export-status")).to_have_text("Complete", timeout=20_000)
    expect(page.locator("#mcom-export-count")).to_contain_text(re.compile(r"^(\d+) / \1 items \(100"))
    shot(page, "06-catalog-export-complete")
    statuses = list(CatalogExportTask.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [CatalogExportTask.CANCELLED, CatalogExportTask.COMPLETE]


def test_read_only_user_sees_pages_without_buttons(browser: Any, connector: Any, shot: Any) -> None:
    from django.contrib.auth import get_user_model

    from mcom.adminui import permissions

    user = get_user_model().objects.create_user("auditor", "auditor@example.com", "auditor-password-2025")
    user.is_staff = True
    user.save()
    permissions.make_read_only(user)
    context = browser.new_context(base_url=connector.url, viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.goto("/admin/login/?next=/admin/mcom/integration/")
    tab.get_by_label("Username").fill("auditor")
    tab.get_by_label("Password").fill("auditor-password-2025")
    tab.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("heading", name="Integration", exact=True)).to_be_visible()
    expect(tab.get_by_role("button", name="Register")).to_have_count(0)
    tab.goto("/admin/mcom/configuration/")
    expect(tab.get_by_label("Sales Channel ID")).to_be_disabled()
    expect(tab.get_by_role("button", name="Save Config")).to_have_count(0)
    shot(tab, "10-read-only-configuration")
    context.close()
