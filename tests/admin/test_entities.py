"""Commerce Admin entity pages: orders (OMS export, history, post-sales, Request return), products
(last OMS sync) and stock items (read-only in production mode). Django test client, real database."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.admin.conftest import PASSWORD

from mcom.adminui import permissions
from mcom.catalog.models import ProductSync
from mcom.commerce import config, services
from mcom.commerce.models import (
    CreditMemo,
    CreditMemoItem,
    Order,
    OrderItem,
    OrderStatusHistory,
    Product,
    Rma,
    Shipment,
    ShipmentItem,
    ShipmentTrack,
    StockAggregate,
    StockItem,
    Store,
)
from mcom.service_bus.models import LoggedMessage

AUTHORIZE = "magento.postsales.return_management.authorize"

MakeOrder = Callable[..., Order]


def html(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


@pytest.fixture
def store(db: None) -> Store:
    shop = Store.objects.create(code="main", name="Main store")
    config.set_value("mcom/general/sales_channel_id", "web-channel", scope="store", scope_code="main")
    return shop


@pytest.fixture
def make_order(store: Store) -> MakeOrder:
    """``make_order([(sku, qty, shipped), …], exported=True)``: one shipment (WH1) of the shipped units."""
    counter = iter(range(1, 10_000))

    def make(lines: Sequence[tuple[str, int, int]] = (("SKU-A", 2, 2), ("SKU-B", 1, 0)), *,
             exported: bool = True, **fields: Any) -> Order:
        order = Order.objects.create(
            increment_id=f"7{next(counter):08d}", store=store, customer_email="c@example.com", status="processing",
            state=Order.STATE_PROCESSING, payment_authorized=True,
            oms_export_state=Order.EXPORT_EXPORTED if exported else Order.EXPORT_NOT_EXPORTED, **fields,
        )
        shipment = Shipment.objects.create(order=order, dedupe_key=f"ship-{order.increment_id}", source_id="WH1",
                                           oms_shipment_id=f"SHP-{order.increment_id}", method="STANDARD")
        for sku, qty, shipped in lines:
            item = OrderItem.objects.create(
                order=order, sku=sku, name=f"Product {sku}", qty_ordered=qty, qty_shipped=shipped,
                price=Decimal("10.00"), price_incl_tax=Decimal("12.10"), tax_percent=Decimal("21"),
                row_total=Decimal("10.00") * qty, row_total_incl_tax=Decimal("12.10") * qty,
            )
            if shipped:
                ShipmentItem.objects.create(shipment=shipment, order_item=item, qty=shipped)
        return order

    return make


def _url(order: Order, view: str = "change") -> str:
    if view == "return":
        return reverse("admin:commerce_order_request_return", args=[order.pk])
    return reverse("admin:commerce_order_change", args=[order.pk])


def _return_form(order: Order, quantities: dict[str, int], **extra: str) -> dict[str, str]:
    data = {"reason": extra.pop("reason", "")}
    for item in order.items.all():
        data[f"line-{item.pk}-qty"] = str(quantities.get(item.sku, 0))
        data[f"line-{item.pk}-reason"] = extra.get(f"{item.sku}-reason", "")
        data[f"line-{item.pk}-condition"] = extra.get(f"{item.sku}-condition", "")
    return data


def _authorize_messages() -> list[LoggedMessage]:
    return list(LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic=AUTHORIZE).order_by("id"))


# ------------------------------------------------------------------------------------- orders


def test_order_page_shows_export_state_error_history_and_post_sales(
    operator_client: Client, make_order: MakeOrder
) -> None:
    order = make_order(exported=False)
    Order.objects.filter(pk=order.pk).update(
        oms_export_state=Order.EXPORT_FAILED, oms_export_attempts=3,
        oms_export_error="OMS unavailable: HTTP 503 from the service bus",
    )
    OrderStatusHistory.objects.create(order=order, status="processing", comment="Invoiced by the OMS",
                                      source=OrderStatusHistory.SOURCE_OMS)
    shipment = order.shipments.get()
    ShipmentTrack.objects.create(shipment=shipment, carrier="UPS", tracking_number="1Z999AA10123456784",
                                 tracking_url="https://track.example/1Z999AA10123456784")
    item = order.items.get(sku="SKU-A")
    rma = Rma.objects.create(order=order, request_id="req-123", rma_number="RMA-CS-1", status="APPROVED",
                             reason="wrong size")
    rma.items.create(order_item=item, qty=1, condition="NEW", status="APPROVED")
    memo = CreditMemo.objects.create(order=order, rma=rma, credit_note_number="CDE42", reason="return",
                                     subtotal=Decimal("10"), tax_amount=Decimal("2.10"), grand_total=Decimal("12.10"))
    CreditMemoItem.objects.create(credit_memo=memo, order_item=item, qty=1)

    page = html(operator_client.get(_url(order)))
    assert "OMS export" in page
    assert "Failed" in page
    assert "OMS unavailable: HTTP 503 from the service bus" in page
    assert '<div class="readonly">3</div>' in page  # attempts
    assert "Invoiced by the OMS" in page  # status history
    assert "SHP-" + order.increment_id in page
    assert "WH1" in page
    assert "SKU-A × 2" in page
    assert "1Z999AA10123456784" in page
    assert "https://track.example/1Z999AA10123456784" in page
    assert "req-123" in page
    assert "RMA-CS-1" in page
    assert "SKU-A × 1 (NEW) — APPROVED" in page
    assert "CDE42" in page
    assert "12.10" in page
    assert "Request return" not in page  # not exported


def test_exported_shipped_order_links_to_request_return(operator_client: Client, make_order: MakeOrder) -> None:
    order = make_order()
    Order.objects.filter(pk=order.pk).update(oms_exported_at=timezone.now(), oms_export_attempts=1)
    page = html(operator_client.get(_url(order)))
    assert "Exported" in page
    assert f'href="{_url(order, "return")}"' in page
    unshipped = make_order([("SKU-C", 1, 0)])
    assert "Request return" not in html(operator_client.get(_url(unshipped)))


def test_request_return_page_lists_the_shipped_lines(operator_client: Client, make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 3, 2), ("SKU-B", 1, 0)])
    a = order.items.get(sku="SKU-A")
    page = html(operator_client.get(_url(order, "return")))
    assert f'name="line-{a.pk}-qty"' in page
    assert "csrfmiddlewaretoken" in page
    assert "SKU-B" not in page  # not shipped
    assert 'list="mcom-return-conditions"' in page


def test_request_return_creates_the_rma_and_queues_authorize(operator_client: Client, make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 2, 2), ("SKU-B", 1, 1)])
    a, b = order.items.order_by("id")
    data = _return_form(order, {"SKU-A": 2}, reason="wrong size", **{"SKU-A-condition": "NEW"})
    response = operator_client.post(_url(order, "return"), data)
    assert response.status_code == 302
    assert response["Location"] == _url(order)

    rma = Rma.objects.get(order=order)
    assert rma.status == Rma.STATUS_PENDING
    assert rma.reason == "wrong size"
    assert [(i.order_item_id, i.qty, i.condition) for i in rma.items.all()] == [(a.pk, Decimal(2), "NEW")]
    [msg] = _authorize_messages()
    assert msg.entity_key == f"order:{order.increment_id}"
    params = json.loads(msg.payload)["return"]
    assert params["user"] == "operator"
    assert params["order_id"] == order.increment_id
    assert [(ln["id"], ln["condition"], ln["reason"]) for ln in params["lines"]] == [
        (f"{a.pk}-1", "NEW", "wrong size"), (f"{a.pk}-2", "NEW", "wrong size")]

    page = html(operator_client.get(response["Location"]))
    assert f"request id {rma.request_id}" in page
    assert "2 units" in page
    assert rma.request_id in page
    assert "awaiting the OMS" in page
    assert b.pk  # SKU-B untouched


def test_request_return_with_too_many_units_shows_the_error_next_to_the_line(
    operator_client: Client, make_order: MakeOrder
) -> None:
    order = make_order([("SKU-A", 3, 2)])
    a = order.items.get()
    page = html(operator_client.post(_url(order, "return"), _return_form(order, {"SKU-A": 3})))
    assert "Please correct the errors below." in page
    assert f'id="return-line-{a.pk}"' in page
    row = page[page.index(f'id="return-line-{a.pk}"'):]
    row = row[: row.index("</tr>")]
    assert "3 is more than the 2 returnable of SKU-A (shipped 2, already returned or requested 0)" in row
    assert 'class="errorlist' in row
    assert not Rma.objects.exists()
    assert not _authorize_messages()


def test_request_return_without_any_quantity_is_refused(operator_client: Client, make_order: MakeOrder) -> None:
    order = make_order()
    page = html(operator_client.post(_url(order, "return"), _return_form(order, {})))
    assert "a return needs at least one line" in page
    bad = html(operator_client.post(_url(order, "return"), _return_form(order, {"SKU-A": -1})))
    assert "Ensure this value is greater than or equal to 0." in bad
    assert not Rma.objects.exists()


def test_request_return_of_an_unexported_order_redirects_with_the_reason(
    operator_client: Client, make_order: MakeOrder
) -> None:
    order = make_order(exported=False)
    response = operator_client.get(_url(order, "return"), follow=True)
    assert "has not been exported to the OMS yet" in html(response)


def test_read_only_user_gets_403(reader_client: Client, make_order: MakeOrder) -> None:
    order = make_order()
    assert reader_client.get(_url(order)).status_code == 200
    assert "Request return" not in reader_client.get(_url(order)).content.decode()
    assert reader_client.get(_url(order, "return")).status_code == 403
    assert reader_client.post(_url(order, "return"), _return_form(order, {"SKU-A": 1})).status_code == 403
    assert not Rma.objects.exists()
    assert not _authorize_messages()


def test_changing_orders_is_not_enough_without_the_act_permission(make_order: MakeOrder) -> None:
    order = make_order()
    user = get_user_model().objects.create_user("clerk", "clerk@example.com", PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_order", "change_order"]))
    client = Client()
    client.force_login(user)
    assert client.get(_url(order, "return")).status_code == 403
    permissions.grant_act(user)
    assert client.get(_url(order, "return")).status_code == 200


def test_request_return_needs_the_csrf_token(operator: Any, make_order: MakeOrder) -> None:
    order = make_order()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(_url(order, "return"), _return_form(order, {"SKU-A": 1})).status_code == 403
    assert not Rma.objects.exists()


# ------------------------------------------------------------------------------------- products


def test_product_list_and_page_show_the_last_sync(operator_client: Client, db: None) -> None:
    synced = Product.objects.create(sku="SYNCED-1", name="Synced")
    failed = Product.objects.create(sku="FAILED-1", name="Failed")
    Product.objects.create(sku="NEVER-1", name="Never")
    now = timezone.now()
    ProductSync.objects.create(product=synced, last_queued_at=now, last_synced_at=now)
    ProductSync.objects.create(product=failed, last_queued_at=now, last_error="OMS refused: sku too long")

    listing = html(operator_client.get(reverse("admin:commerce_product_changelist")))
    assert "OMS sync" in listing
    assert "synced " in listing
    assert "never queued" in listing
    assert "failed: OMS refused: sku too long" in listing
    only_errors = html(operator_client.get(reverse("admin:commerce_product_changelist"), {"oms_sync": "error"}))
    assert "FAILED-1" in only_errors
    assert "SYNCED-1" not in only_errors

    page = html(operator_client.get(reverse("admin:commerce_product_change", args=[failed.pk])))
    assert "Last queued for the OMS" in page
    assert "Last sync error" in page
    assert "OMS refused: sku too long" in page
    never = Product.objects.get(sku="NEVER-1")
    assert "Last delivered to the OMS" in html(
        operator_client.get(reverse("admin:commerce_product_change", args=[never.pk])))


# ------------------------------------------------------------------------------------- stock


@pytest.fixture
def stock(db: None) -> dict[str, Any]:
    aggregate = StockAggregate.objects.create(code="AGG-1", name="Main")
    managed = Product.objects.create(sku="MANAGED-1", name="Managed")
    virtual = Product.objects.create(sku="VIRTUAL-1", name="Virtual", type=Product.TYPE_VIRTUAL, manage_stock=False)
    return {
        "aggregate": aggregate,
        "managed": services.set_stock(managed, aggregate, 5, source="oms"),
        "virtual": services.set_stock(virtual, aggregate, 0, source="oms"),
    }


def _stock_post(client: Client, item: StockItem, qty: int) -> Any:
    data = {"product": item.product_id, "aggregate": item.aggregate_id, "qty": str(qty)}
    return client.post(reverse("admin:commerce_stockitem_change", args=[item.pk]), data)


def test_stock_is_read_only_in_production_mode(operator_client: Client, stock: dict[str, Any], env: Any) -> None:
    env(mode="production")
    item = stock["managed"]
    listing = html(operator_client.get(reverse("admin:commerce_stockitem_changelist")))
    assert "stock is managed by the OMS" in listing
    page = html(operator_client.get(reverse("admin:commerce_stockitem_change", args=[item.pk])))
    assert 'name="qty"' not in page
    assert "stock is managed by the OMS" in page
    assert _stock_post(operator_client, item, 99).status_code == 403
    assert operator_client.get(reverse("admin:commerce_stockitem_add")).status_code == 403
    assert StockItem.objects.get(pk=item.pk).qty == 5


def test_products_without_stock_management_stay_editable_in_production(
    operator_client: Client, stock: dict[str, Any], env: Any
) -> None:
    env(mode="production")
    item = stock["virtual"]
    assert 'name="qty"' in html(operator_client.get(reverse("admin:commerce_stockitem_change", args=[item.pk])))
    assert _stock_post(operator_client, item, 7).status_code == 302
    assert StockItem.objects.get(pk=item.pk).qty == 7


def test_stock_is_editable_in_developer_mode(operator_client: Client, stock: dict[str, Any], env: Any) -> None:
    env(mode="developer")
    item = stock["managed"]
    page = html(operator_client.get(reverse("admin:commerce_stockitem_change", args=[item.pk])))
    assert 'name="qty"' in page
    assert "stock is managed by the OMS" not in page
    response = _stock_post(operator_client, item, 12)
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.qty == 12
    assert item.is_in_stock
    assert item.product.stock_statuses.get().qty == 12  # set_stock reindexed the row


def test_saving_a_product_in_the_admin_queues_its_oms_sync(operator_client: Client, db: None) -> None:
    product = Product.objects.create(sku="ADM-1", name="Old name", price=Decimal("5"))
    url = reverse("admin:commerce_product_change", args=[product.pk])
    form = {
        "sku": "ADM-1", "name": "New name", "type": "simple", "enabled": "on", "price": "5.00", "weight": "",
        "manage_stock": "on", "url_key": "", "image_url": "", "custom_attributes": "{}", "children_skus": "[]",
    }
    response = operator_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    queued = LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic="magento.catalog.product_management.updated")
    assert queued.count() == 1
    assert json.loads(queued.get().payload)["product"]["name"][0]["value"] == "New name"


# ------------------------------------------------------------------- polish: returnable, no delete, names


def test_request_return_is_not_offered_once_everything_is_returned_or_the_order_is_closed(
    operator_client: Client, make_order: MakeOrder
) -> None:
    order = make_order([("SKU-A", 1, 1)])
    assert "Request return" in html(operator_client.get(_url(order)))
    item = order.items.get()
    rma = Rma.objects.create(order=order, request_id="req-all", rma_number="RMA-ALL", status="APPROVED")
    rma.items.create(order_item=item, qty=1, status="APPROVED")
    assert "Request return" not in html(operator_client.get(_url(order)))  # fully returned
    other = make_order([("SKU-B", 1, 1)])
    Order.objects.filter(pk=other.pk).update(state=Order.STATE_CLOSED, status="closed")
    assert "Request return" not in html(operator_client.get(_url(other)))


def test_orders_the_oms_knows_cannot_be_deleted(operator_client: Client, make_order: MakeOrder) -> None:
    exported = make_order()
    page = html(operator_client.get(_url(exported)))
    assert "deletelink" not in page
    assert operator_client.get(reverse("admin:commerce_order_delete", args=[exported.pk])).status_code == 403
    changelist = html(operator_client.get(reverse("admin:commerce_order_changelist")))
    assert "delete_selected" not in changelist
    local = make_order(exported=False)
    assert "deletelink" in html(operator_client.get(_url(local)))
    shipment = exported.shipments.get()
    assert operator_client.get(reverse("admin:commerce_shipment_delete", args=[shipment.pk])).status_code == 403


def test_admin_names_are_spelled_right(operator_client: Client) -> None:
    index = html(operator_client.get(reverse("admin:index")))
    for wrong in ("Addresss", "Historys", "Statuss", "Rmas"):
        assert wrong not in index
    assert "Stock statuses" in index
    assert "Returns (RMAs)" in index
    assert "Order status history" in index


def test_credit_memo_reason_is_shown_in_words(operator_client: Client, make_order: MakeOrder) -> None:
    order = make_order()
    CreditMemo.objects.create(order=order, credit_note_number="CDE77", reason="RELEASESUCCESS",
                              subtotal=Decimal("10"), tax_amount=Decimal("2.10"), grand_total=Decimal("12.10"))
    assert "Refund released (RELEASESUCCESS)" in html(operator_client.get(_url(order)))
    assert "Refund released (RELEASESUCCESS)" in html(operator_client.get(reverse("admin:commerce_creditmemo_changelist")))
