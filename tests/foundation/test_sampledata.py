"""sampledata:deploy: counts, determinism, idempotence, no sync flood by default."""

from __future__ import annotations

from click.testing import CliRunner

from mcom.cli.main import main
from mcom.commerce import hooks, sampledata
from mcom.commerce.models import (
    Order,
    OrderAddress,
    OrderItem,
    Product,
    StockAggregate,
    StockItem,
    StockStatus,
    Store,
)


def test_small_run_counts(db: None) -> None:
    calls: list[int] = []
    hooks.products_saved.append(lambda products: calls.append(len(products)))
    r = CliRunner().invoke(main, ["sampledata:deploy", "--products", "200", "--orders", "20", "--stores", "2"])
    assert r.exit_code == 0, r.output
    assert "products: 200 created, 0 updated" in r.output
    assert "Orders: 20 placed" in r.output
    assert "Done in" in r.output
    assert calls == []  # --no-sync is the default
    assert Product.objects.count() == 200
    assert set(Product.objects.values_list("type", flat=True)) >= {"simple", "configurable", "virtual"}
    assert Store.objects.count() == 2
    assert StockAggregate.objects.count() == 2
    assert all(s.stock_aggregate_id for s in Store.objects.all())
    managed = Product.objects.filter(manage_stock=True).count()
    assert StockItem.objects.count() == managed * 2 == StockStatus.objects.count()
    assert Order.objects.count() == 20
    assert OrderAddress.objects.count() == 40
    assert Order.objects.filter(status="pending", payment_authorized=True).count() == 20
    assert OrderItem.objects.filter(parent__isnull=True).count() >= 20
    for order in Order.objects.all()[:5]:
        top = order.items.filter(parent__isnull=True)
        assert sum(i.row_total for i in top) == order.subtotal
        assert order.grand_total == order.subtotal - order.discount_amount + order.tax_amount + order.shipping_amount
    attrs = Product.objects.filter(type="simple").first()
    assert attrs is not None
    assert {"color", "brand", "material"} <= set(attrs.custom_attributes)


def test_rerun_upserts_products_and_adds_orders(db: None) -> None:
    first = sampledata.deploy(products=120, orders=5, stores=1, seed=7)
    skus = set(Product.objects.values_list("sku", flat=True))
    second = sampledata.deploy(products=120, orders=5, stores=1, seed=7)
    assert (first.products_created, second.products_created, second.products_updated) == (120, 0, 120)
    assert set(Product.objects.values_list("sku", flat=True)) == skus
    assert Order.objects.count() == 10
    assert first.last_increment_id < second.first_increment_id


def test_sync_runs_hooks_once_per_batch(db: None) -> None:
    calls: list[int] = []
    hooks.products_saved.append(lambda products: calls.append(len(products)))
    sampledata.deploy(products=1500, orders=0, stores=1, sync=True)
    assert calls == [1000, 500]


def test_same_seed_same_catalog() -> None:
    import random

    a = sampledata.generate_products(300, random.Random(3))
    b = sampledata.generate_products(300, random.Random(3))
    assert [p.sku for p in a] == [p.sku for p in b]
    assert [p.price for p in a] == [p.price for p in b]
    assert len({p.sku for p in a}) == 300
