"""Inventory commands and the OMS ownership of stock: reset (developer only), edit guard, sources."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from mcom.cli.main import main
from mcom.commerce import services as commerce
from mcom.commerce.hooks import ChangeRefused
from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus
from mcom.inventory import services
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage

from .conftest import index_of, stock_of

pytestmark = pytest.mark.django_db


def test_stock_reset_is_refused_in_production_mode(catalog: Any, eu: Any, env: Any) -> None:
    env(mode="production")
    StockItem.objects.create(product=catalog[0], aggregate=eu, qty=3, is_in_stock=True)
    result = CliRunner().invoke(main, ["oms:stock:reset"])
    assert result.exit_code == 1
    assert "only runs in developer mode" in result.output
    assert "production" in result.output
    assert StockItem.objects.count() == 1  # nothing touched
    assert not LoggedMessage.objects.exists()


def test_stock_reset_publishes_100_for_every_product_in_every_aggregate(catalog: Any, eu: Any, env: Any,
                                                                      monkeypatch: Any) -> None:
    env(mode="developer")
    monkeypatch.setattr(services, "RESET_CHUNK", 4)  # several messages per aggregate
    StockAggregate.objects.create(code="US")
    StockItem.objects.create(product=catalog[0], aggregate=eu, qty=3, is_in_stock=True)
    StockStatus.objects.create(product=catalog[1], aggregate=eu, qty=3, stock_status=True)
    result = CliRunner().invoke(main, ["oms:stock:reset"])
    assert result.exit_code == 0, result.output
    msgs = LoggedMessage.objects.filter(direction=LoggedMessage.IN, topic=methods.STOCK_UPDATED)
    assert msgs.count() == 4  # 6 products in messages of ≤ 4 SKUs, 2 aggregates
    assert set(msgs.values_list("status", flat=True)) == {LoggedMessage.COMPLETE}
    for agg in ("EU", "US"):
        assert stock_of(agg) == {p.sku: (100.0, True) for p in catalog}
        assert index_of(agg) == {p.sku: (100.0, True) for p in catalog}
    assert "removed 1 stock item(s) and 1 index row(s)" in result.output
    assert "published 4 stock update message(s)" in result.output
    assert "6 product(s) in 2 aggregate(s)" in result.output


def test_stock_reset_messages_are_delta_snapshots_of_at_most_10000_skus(db: None, env: Any) -> None:
    env(mode="developer")
    Product.objects.bulk_create([Product(sku=f"S{i:05d}", name="x") for i in range(10_001)])
    StockAggregate.objects.create(code="EU")
    result = services.reset_stock()
    assert result.messages == 2
    assert result.stock_items == 10_001
    import json

    sizes = sorted(len(json.loads(p)["params"]["snapshot"]["stock"]) for p in
                   LoggedMessage.objects.filter(topic=methods.STOCK_UPDATED).values_list("payload", flat=True))
    assert sizes == [1, 10_000]
    modes = {json.loads(p)["params"]["snapshot"]["mode"] for p in LoggedMessage.objects.values_list("payload", flat=True)}
    assert modes == {"DELTA"}


def test_local_stock_edit_is_refused_in_production_mode(catalog: Any, eu: Any, env: Any) -> None:
    env(mode="production")
    with pytest.raises(ChangeRefused, match=r"Stock is managed by the OMS \(production mode\)"):
        commerce.set_stock(catalog[0], eu, 5)
    assert not StockItem.objects.exists()
    commerce.set_stock(catalog[-1], eu, 5)  # virtual: exempt
    commerce.set_stock(catalog[0], eu, 7, source="oms")  # the OMS path is not guarded


def test_local_stock_edit_is_allowed_in_developer_mode(catalog: Any, eu: Any, env: Any) -> None:
    env(mode="developer")
    commerce.set_stock(catalog[0], eu, 5)
    assert stock_of() == {"SKU-1": (5.0, True)}


def test_stores_are_linked_to_aggregates(db: None) -> None:
    from mcom.commerce.models import Store

    Store.objects.create(code="nl", name="NL")
    store = services.assign_aggregate(store="nl", aggregate="EU")
    assert store.stock_aggregate is not None
    assert store.stock_aggregate.code == "EU"
    assert services.assign_aggregate(store="nl", aggregate=None).stock_aggregate is None
    with pytest.raises(services.InventoryError, match="unknown store"):
        services.assign_aggregate(store="xx", aggregate="EU")


def test_sources_list_without_a_configured_bus_fails_with_one_line(db: None) -> None:
    result = CliRunner().invoke(main, ["oms:sources:list"])
    assert result.exit_code == 1
    assert "service_bus" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_stock_reset_with_the_inventory_module_disabled_changes_nothing(catalog: Any, eu: Any, env: Any) -> None:
    env(mode="developer", modules=["sales", "catalog"])
    StockItem.objects.create(product=catalog[0], aggregate=eu, qty=3, is_in_stock=True)
    result = CliRunner().invoke(main, ["oms:stock:reset"])
    assert result.exit_code == 1
    assert "inventory module is disabled" in result.output
    assert StockItem.objects.count() == 1
