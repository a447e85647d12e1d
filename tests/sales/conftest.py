"""Fixtures of the sales tests: unsaved commerce objects for the pure mapper tests, and orders placed
through ``commerce.services.place_order`` (hooks included) for the database and wire tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mcom.commerce import config
from mcom.commerce.models import Order, OrderAddress, OrderItem, Product, Store
from mcom.sales import plugins

CHANNEL = "web-eu"
D = Decimal


# ----------------------------------------------------------------------------- unsaved objects


def unit_store(**kw: Any) -> Store:
    fields = {"pk": 1, "code": "de", "name": "German store", "locale": "de_DE", "currency": "EUR", "country": "DE",
              "base_url": "https://shop.example"}
    fields.update(kw)
    return Store(**fields)


def unit_order(store: Store | None = None, **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "pk": 42, "increment_id": "000000042", "store": store or unit_store(), "status": "pending",
        "payment_method": "checkmo", "payment_authorized": True, "customer_email": "ada@example.com",
        "customer_firstname": "Ada", "customer_lastname": "Lovelace", "currency": "EUR",
        "created_at": datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC), "remote_ip": "203.0.113.7",
        "shipping_method": "flatrate_flatrate", "shipping_description": "Flat Rate - Fixed",
        "shipping_amount": D("5.00"), "shipping_tax_amount": D("0.95"),
    }
    fields.update(kw)
    return Order(**fields)


def unit_addresses(order: Order, *, same: bool = False) -> list[OrderAddress]:
    billing = OrderAddress(pk=7, order=order, address_type=OrderAddress.BILLING, firstname="Ada",
                           lastname="Lovelace", street1="1 Analytical Way", city="London", postcode="N1 9GU",
                           country_id="GB", telephone="+44 20 0000", email="")
    shipping = OrderAddress(pk=8, order=order, address_type=OrderAddress.SHIPPING, firstname="Ada",
                            lastname="Lovelace", street1="12 Engine Street", street2="Floor 2", city="Berlin",
                            region="BE", postcode="10115", country_id="DE", telephone="", email="ship@example.com")
    return [billing] if same else [billing, shipping]


def unit_item(pk: int, sku: str, qty: int | str, price: str, *, tax_percent: str = "19", discount: str = "0",
              product_type: str = "simple", parent_id: int | None = None, product: Product | None = None,
              priced: bool = True, **kw: Any) -> OrderItem:
    """An item computed like commerce.services.build_order (tax on the discounted row)."""
    q, p, pct, disc = D(str(qty)), D(price), D(tax_percent), D(discount)
    row = (p * q).quantize(D("0.01")) if priced else D("0")
    tax = ((row - disc) * pct / 100).quantize(D("0.01")) if priced else D("0")
    item = OrderItem(
        pk=pk, sku=sku, name=kw.pop("name", f"Product {sku}"), product_type=product_type, qty_ordered=q,
        price=p if priced else D("0"), price_incl_tax=(p * (100 + pct) / 100).quantize(D("0.01")) if priced else D("0"),
        tax_percent=pct, tax_amount=tax, discount_amount=disc, row_total=row, row_total_incl_tax=row + tax,
        parent_id=parent_id, **kw,
    )
    if product is not None:
        item.product = product
    return item


# ----------------------------------------------------------------------------- database


@pytest.fixture(autouse=True)
def _fresh_plugins() -> Iterator[None]:
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def shop(db: None) -> Store:
    """Store ``main`` with sales channel ``web-eu`` and three products."""
    store = Store.objects.create(code="main", name="Main store", locale="en_GB", currency="EUR", country="DE",
                                 base_url="https://shop.example")
    config.set_value("mcom/general/sales_channel_id", CHANNEL, scope="store", scope_code="main")
    Product.objects.bulk_create([
        Product(sku="SKU-A", name="Alpha", price=D("10.00"), url_key="alpha", image_url="https://img.example/a.jpg"),
        Product(sku="SKU-B", name="Beta", price=D("25.00")),
        Product(sku="EBOOK", name="E-book", type=Product.TYPE_VIRTUAL, price=D("9.99"), manage_stock=False),
    ])
    return store


PlaceOrder = Callable[..., Order]


@pytest.fixture
def place(shop: Store) -> PlaceOrder:
    """``place(lines=[("SKU-A", 2)], **order_fields)``: an order placed through the commerce service."""
    from mcom.commerce.schemas import OrderIn
    from mcom.commerce.services import place_order

    def _place(lines: Any = (("SKU-A", 2), ("SKU-B", 1)), **fields: Any) -> Order:
        data: dict[str, Any] = {
            "store": "main", "customer_email": "ada@example.com",
            "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Analytical Way",
                                "city": "Berlin", "postcode": "10115", "country_id": "DE"},
            "lines": [{"sku": sku, "qty": qty, "tax_percent": "19"} for sku, qty in lines],
            "shipping": {"method": "flatrate_flatrate", "amount": "4.95"},
        }
        data.update(fields)
        order = place_order(OrderIn.model_validate(data))
        order.refresh_from_db()
        return order

    return _place
