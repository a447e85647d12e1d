"""Commerce services beyond the REST surface: status sources, hooks, stock index, increment ids."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mcom.commerce import hooks, services
from mcom.commerce.models import Order, Product, StockAggregate, StockItem, StockStatus
from mcom.commerce.schemas import OrderIn, ProductIn

from .conftest import order_payload


def _order() -> Order:
    return services.place_order(OrderIn.model_validate(order_payload()))


def test_oms_status_change_skips_guards(catalog: dict[str, Any]) -> None:
    order = _order()

    def refuse(o: Order, status: str) -> None:
        raise hooks.ChangeRefused("exported")

    hooks.order_status_guard.append(refuse)
    with pytest.raises(hooks.ChangeRefused):
        services.change_order_status(order, "canceled")
    services.change_order_status(order, "oms_shipped", comment="from the OMS", source="oms")
    order.refresh_from_db()
    assert order.status == "oms_shipped"
    assert order.state == "new"
    services.change_order_status(order, "complete", source="oms")
    assert Order.objects.get(pk=order.pk).state == "complete"
    history = list(order.status_history.values_list("status", "source"))
    assert history == [("pending", "local"), ("oms_shipped", "oms"), ("complete", "oms")]


def test_same_status_is_a_no_op(catalog: dict[str, Any]) -> None:
    order = _order()
    services.change_order_status(order, "pending")
    assert order.status_history.count() == 1


def test_increment_ids_skip_taken_ones(catalog: dict[str, Any]) -> None:
    services.place_order(OrderIn.model_validate(order_payload(increment_id="000000002")))
    ids = [_order().increment_id for _ in range(3)]
    assert ids == ["000000001", "000000003", "000000004"]


def test_products_saved_once_per_batch(db: None) -> None:
    calls: list[int] = []
    hooks.products_saved.append(lambda products: calls.append(len(products)))
    items = [ProductIn(sku=f"P{i:05d}", name="p") for i in range(2500)]
    result = services.upsert_products(items)
    assert (result.created, result.updated) == (2500, 0)
    assert calls == [1000, 1000, 500]
    assert all(p.pk for p in Product.objects.filter(sku__in=["P00000", "P02499"]))
    result = services.upsert_products(items[:10], run_hooks=False)
    assert (result.created, result.updated) == (0, 10)
    assert calls == [1000, 1000, 500]


def test_manage_stock_defaults(db: None) -> None:
    services.upsert_products([
        ProductIn(sku="V", name="v", type="virtual"), ProductIn(sku="G", name="g", type="giftcard"),
        ProductIn(sku="S", name="s"), ProductIn(sku="G2", name="g", type="giftcard", manage_stock=True),
    ])
    assert dict(Product.objects.values_list("sku", "manage_stock")) == {"V": False, "G": False, "S": True, "G2": True}


def test_reindex_stock(catalog: dict[str, Any]) -> None:
    agg: StockAggregate = catalog["aggregate"]
    other = StockAggregate.objects.create(code="agg_2")
    mug, tee, warranty = (Product.objects.get(sku=s) for s in ("MUG", "TEE-RED-M", "WARRANTY"))
    StockItem.objects.create(product=mug, aggregate=agg, qty=3, is_in_stock=True)
    StockItem.objects.create(product=mug, aggregate=other, qty=0, is_in_stock=False)
    StockItem.objects.create(product=tee, aggregate=agg, qty=0, is_in_stock=False, unlimited=True)
    StockItem.objects.create(product=warranty, aggregate=agg, qty=0, is_in_stock=False)
    assert services.reindex_stock() == 4
    status = {(s.product.sku, s.aggregate.code): (s.qty, s.stock_status) for s in StockStatus.objects.all()}
    assert status == {
        ("MUG", "agg_default"): (Decimal(3), True),
        ("MUG", "agg_2"): (Decimal(0), False),
        ("TEE-RED-M", "agg_default"): (Decimal(0), True),  # unlimited
        ("WARRANTY", "agg_default"): (Decimal(0), True),  # no stock management
    }
    StockItem.objects.filter(product=mug, aggregate=other).update(qty=9, is_in_stock=True)
    assert services.reindex_stock(product_ids=[mug.pk]) == 2
    assert StockStatus.objects.get(product=mug, aggregate=other).stock_status is True
    assert StockStatus.objects.count() == 4


def test_set_stock_rejects_negative_and_runs_guard_only_locally(catalog: dict[str, Any]) -> None:
    mug = Product.objects.get(sku="MUG")
    with pytest.raises(services.FieldError):
        services.set_stock(mug, catalog["aggregate"], -1)

    def refuse(product: Product) -> None:
        raise hooks.ChangeRefused("production mode")

    hooks.stock_edit_guard.append(refuse)
    with pytest.raises(hooks.ChangeRefused):
        services.set_stock(mug, catalog["aggregate"], 4)
    item = services.set_stock(mug, catalog["aggregate"], 4, source="oms")
    assert item.qty == 4
    assert StockStatus.objects.get(product=mug).stock_status is True
