"""Commerce Admin: branding, entity pages, guarded order status and stock edits."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from mcom.commerce import hooks, services
from mcom.commerce.models import Order, Product, StockItem
from mcom.commerce.schemas import OrderIn

from .conftest import order_payload

MODELS = ["store", "product", "stockaggregate", "stockitem", "stockstatus", "order", "orderstatushistory",
          "shipment", "creditmemo", "rma", "configvalue", "apitoken"]


@pytest.fixture
def order(catalog: dict[str, Any]) -> Order:
    return services.place_order(OrderIn.model_validate(order_payload()))


def test_login_required(db: None) -> None:
    r = Client().get("/admin/commerce/order/")
    assert r.status_code == 302
    assert "/admin/login/" in r["Location"]


def test_branding_and_pages(admin_client: Client, order: Order) -> None:
    r = admin_client.get("/admin/")
    assert r.status_code == 200
    assert "Commerce Admin" in r.content.decode()
    for model in MODELS:
        r = admin_client.get(f"/admin/commerce/{model}/")
        assert r.status_code == 200, model
    r = admin_client.get("/admin/commerce/order/", {"q": order.customer_email, "oms_export_state": "not_exported"})
    assert order.increment_id in r.content.decode()
    r = admin_client.get("/admin/commerce/product/", {"q": "Mug", "type": "simple"})
    assert "MUG" in r.content.decode()
    r = admin_client.get(f"/admin/commerce/order/{order.pk}/change/")
    body = r.content.decode()
    assert r.status_code == 200
    assert "OMS export" in body
    assert "Not exported" in body
    assert "MUG" in body


def _status_form(order: Order, status: str) -> dict[str, Any]:
    data: dict[str, Any] = {"status": status, "status_comment": ""}
    for prefix in ("items", "addresses", "status_history", "shipments"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0",
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    return data


def test_order_status_change_goes_through_the_service(admin_client: Client, order: Order) -> None:
    r = admin_client.post(f"/admin/commerce/order/{order.pk}/change/", _status_form(order, "holded"))
    assert r.status_code == 302, r.content.decode()[:2000]
    order.refresh_from_db()
    assert order.status == "holded"
    assert order.state == "holded"
    assert order.status_history.last().comment.startswith("Changed in the admin")


def test_refused_status_change_is_a_message_not_a_crash(admin_client: Client, order: Order) -> None:
    def refuse(o: Order, status: str) -> None:
        raise hooks.ChangeRefused("Order is exported: its status is managed by the OMS.")

    hooks.order_status_guard.append(refuse)
    r = admin_client.post(f"/admin/commerce/order/{order.pk}/change/", _status_form(order, "canceled"))
    assert r.status_code == 200
    assert "Order is exported: its status is managed by the OMS." in r.content.decode()
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_stock_edit_in_admin_is_guarded(admin_client: Client, catalog: dict[str, Any]) -> None:
    mug = Product.objects.get(sku="MUG")
    data = {"product": mug.pk, "aggregate": catalog["aggregate"].pk, "qty": "12"}
    r = admin_client.post("/admin/commerce/stockitem/add/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert StockItem.objects.get(product=mug).qty == 12

    def refuse(product: Product) -> None:
        raise hooks.ChangeRefused("Stock is managed by the OMS in production mode.")

    hooks.stock_edit_guard.append(refuse)
    item = StockItem.objects.get(product=mug)
    r = admin_client.post(f"/admin/commerce/stockitem/{item.pk}/change/", {**data, "qty": "1"})
    assert r.status_code == 200
    assert "Stock is managed by the OMS in production mode." in r.content.decode()
    assert StockItem.objects.get(product=mug).qty == 12
