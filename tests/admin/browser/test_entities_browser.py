"""The order page in a real browser: request a return through the form, see the error and the RMA."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from playwright.sync_api import expect

from mcom.commerce import config
from mcom.commerce.models import Order, OrderItem, Rma, Shipment, ShipmentItem, ShipmentTrack, Store
from mcom.service_bus.models import LoggedMessage


def _exported_shipped_order() -> Order:
    store = Store.objects.create(code="main", name="Main store")
    config.set_value("mcom/general/sales_channel_id", "web-channel", scope="store", scope_code="main")
    order = Order.objects.create(
        increment_id="000000042", store=store, customer_email="jane@example.com", status="processing",
        state=Order.STATE_PROCESSING, payment_authorized=True, oms_export_state=Order.EXPORT_EXPORTED,
        oms_export_attempts=1,
    )
    shipment = Shipment.objects.create(order=order, dedupe_key="ship-42", source_id="WH1",
                                       oms_shipment_id="SHP-42", method="STANDARD")
    ShipmentTrack.objects.create(shipment=shipment, carrier="UPS", tracking_number="1Z999AA10123456784")
    for sku, qty in (("24-MB01", 2), ("24-WB04", 1)):
        item = OrderItem.objects.create(
            order=order, sku=sku, name=f"Product {sku}", qty_ordered=qty, qty_shipped=qty,
            price=Decimal("34.00"), price_incl_tax=Decimal("41.14"), tax_percent=Decimal("21"),
            row_total=Decimal("34.00") * qty, row_total_incl_tax=Decimal("41.14") * qty,
        )
        ShipmentItem.objects.create(shipment=shipment, order_item=item, qty=qty)
    return order


def test_request_a_return_from_the_order_page(page: Any, shot: Any) -> None:
    order = _exported_shipped_order()
    bag = order.items.get(sku="24-MB01")
    page.goto(f"/admin/commerce/order/{order.pk}/change/")
    expect(page.get_by_role("heading", name="Shipments")).to_be_visible()
    expect(page.locator("#mcom-shipments")).to_contain_text("1Z999AA10123456784")
    shot(page, "20-order-change")

    page.get_by_role("link", name="Request return").click()
    expect(page.get_by_role("heading", name="Shipped lines")).to_be_visible()
    qty = page.get_by_label(f"Qty to return of 24-MB01 (item {bag.pk})")
    qty.fill("3")
    page.get_by_role("button", name="Request return").click()
    expect(page.locator(f"#return-line-{bag.pk}")).to_contain_text("3 is more than the 2 returnable of 24-MB01")
    shot(page, "21-request-return-error")

    page.get_by_label(f"Qty to return of 24-MB01 (item {bag.pk})").fill("1")
    page.get_by_label(f"Condition of 24-MB01 (item {bag.pk})").fill("DAMAGED")
    page.get_by_label("Return reason").fill("arrived torn")
    page.get_by_role("button", name="Request return").click()
    rma = Rma.objects.get(order=order)
    expect(page).to_have_url(re.compile(rf"/admin/commerce/order/{order.pk}/change/$"))
    expect(page.locator(".messagelist")).to_contain_text(f"request id {rma.request_id}")
    expect(page.locator("#mcom-returns")).to_contain_text("24-MB01 × 1 (DAMAGED)")
    shot(page, "22-request-return-done")
    assert rma.reason == "arrived torn"
    assert LoggedMessage.objects.filter(topic="magento.postsales.return_management.authorize").count() == 1
