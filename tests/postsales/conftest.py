"""Fixtures of the post-sales tests: exported, shipped orders built directly in the database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from mcom.commerce import config
from mcom.commerce.models import Order, OrderItem, Shipment, ShipmentItem, Store

CHANNEL = "web-channel"

MakeOrder = Callable[..., Order]


@pytest.fixture
def store(db: None) -> Store:
    shop = Store.objects.create(code="main", name="Main store")
    config.set_value("mcom/general/sales_channel_id", CHANNEL, scope="store", scope_code="main")
    return shop


@pytest.fixture
def make_order(store: Store) -> MakeOrder:
    """``make_order([(sku, qty, shipped), …], exported=True)``: an order with 21 % VAT items priced 10.00."""
    counter = iter(range(1, 10_000))

    def make(lines: Sequence[tuple[str, int, int]] = (("SKU-A", 2, 2), ("SKU-B", 1, 0)), *,
             exported: bool = True, source_id: str = "WH1", **fields: Any) -> Order:
        n = next(counter)
        order = Order.objects.create(
            increment_id=f"1{n:08d}", store=store, customer_email="c@example.com", status="processing",
            state=Order.STATE_PROCESSING, payment_authorized=True,
            oms_export_state=Order.EXPORT_EXPORTED if exported else Order.EXPORT_NOT_EXPORTED, **fields,
        )
        shipment = Shipment.objects.create(order=order, dedupe_key=f"ship-{order.increment_id}", source_id=source_id)
        subtotal = tax = Decimal("0")
        for sku, qty, shipped in lines:
            row = Decimal("10.00") * qty
            item = OrderItem.objects.create(
                order=order, sku=sku, name=sku, qty_ordered=qty, qty_shipped=shipped, price=Decimal("10.00"),
                price_incl_tax=Decimal("12.10"), tax_percent=Decimal("21"), tax_amount=row * Decimal("0.21"),
                row_total=row, row_total_incl_tax=row * Decimal("1.21"),
            )
            if shipped:
                ShipmentItem.objects.create(shipment=shipment, order_item=item, qty=shipped)
            subtotal += row
            tax += row * Decimal("0.21")
        order.subtotal, order.tax_amount, order.grand_total = subtotal, tax, subtotal + tax
        order.save()
        return order

    return make
