"""Stock snapshots and source search against the sandbox OMS over real HTTP (``wired``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from mcom.cli.main import main
from mcom.commerce.models import Product
from mcom.inventory import services
from mcom.service_bus import methods, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import index_of, stock_of


@pytest.fixture
def products(wired: Any) -> Any:
    Product.objects.bulk_create([Product(sku=f"SKU-{i}", name=f"P{i}") for i in range(1, 5)])
    return wired


def deliver(wired: Any, mode: str, created_on: str, items: dict[str, Any], aggregate: str = "EU") -> dict[str, Any]:
    """The sandbox sends a snapshot; the worker applies it; returns the newest message's outcome."""
    wired.sandbox.api.stock_snapshot(aggregate, mode, [{"sku": s, "quantity": q} for s, q in items.items()],
                                     created_on=created_on)
    worker.run_until_idle()
    row = LoggedMessage.objects.filter(direction=LoggedMessage.IN, topic=methods.STOCK_UPDATED).order_by("-id").first()
    assert row is not None, row and row.last_error
    assert row.status == LoggedMessage.COMPLETE, row and row.last_error
    assert row.entity_key == f"stock:{aggregate}"
    return dict(json.loads(row.result))


def test_full_nonzero_delta_semantics_over_the_wire(products: Any) -> None:
    deliver(products, "DELTA", "2024-05-01 08:00:00", {"SKU-1": 1, "SKU-2": 2, "SKU-3": 3})
    full = deliver(products, "FULL", "2024-05-01 09:00:00", {"SKU-1": "10", "SKU-2": 20})
    assert stock_of() == {"SKU-1": (10, True), "SKU-2": (20, True), "SKU-3": (3, True)}  # FULL: SKU-3 unchanged
    assert full["not_in_snapshot"] == 2
    assert full["not_in_snapshot_sample"] == ["SKU-3", "SKU-4"]
    nonzero = deliver(products, "NONZERO", "2024-05-01 10:00:00", {"SKU-1": 5})
    assert stock_of() == {"SKU-1": (5, True), "SKU-2": (0, False), "SKU-3": (0, False)}  # missing → 0
    assert nonzero["zeroed"] == 2
    deliver(products, "DELTA", "2024-05-01 11:00:00", {"SKU-3": 7})
    assert stock_of() == {"SKU-1": (5, True), "SKU-2": (0, False), "SKU-3": (7, True)}  # only SKU-3
    assert index_of() == stock_of()


def test_stale_snapshot_is_ignored(products: Any) -> None:
    deliver(products, "DELTA", "2024-05-01T12:00:00+00:00", {"SKU-1": 9})
    out = deliver(products, "FULL", "2024-05-01 11:59:00", {"SKU-1": 1, "SKU-2": 2})
    assert out["stale"] == 1
    assert stock_of() == {"SKU-1": (9, True), "SKU-2": (2, True)}


def test_unknown_skus_are_reported_in_the_outcome(products: Any) -> None:
    out = deliver(products, "DELTA", "2024-05-01 08:00:00", {"SKU-1": 1, "GHOST": 4})
    assert out["unknown_skus"] == 1
    assert out["unknown_sample"] == ["GHOST"]
    assert stock_of() == {"SKU-1": (1, True)}


def test_a_large_snapshot_arrives_in_parts_that_do_not_zero_each_other(products: Any) -> None:
    Product.objects.bulk_create([Product(sku=f"BULK-{i:05d}", name="b") for i in range(10_500)])
    items = {f"BULK-{i:05d}": 3 for i in range(10_500)}
    products.sandbox.api.stock_snapshot("EU", "NONZERO", [{"sku": s, "quantity": q} for s, q in items.items()],
                                        created_on="2024-06-01 00:00:00")
    worker.run_until_idle()
    rows = LoggedMessage.objects.filter(direction=LoggedMessage.IN, topic=methods.STOCK_UPDATED)
    assert rows.count() == 2
    assert set(rows.values_list("status", flat=True)) == {LoggedMessage.COMPLETE}
    stock = stock_of()
    assert sum(1 for sku, (qty, _) in stock.items() if sku.startswith("BULK-") and qty == 3) == 10_500


def test_bad_snapshot_is_parked_with_its_error(products: Any) -> None:
    from mcom.service_bus import inbox

    params = {"snapshot": {"aggregate_id": "EU", "created_on": "2024-05-01", "mode": "DELTA",
                           "stock": [{"sku": "SKU-1", "quantity": "lots"}]}}
    inbox.store_inbound(methods.STOCK_UPDATED, params)
    worker.run_until_idle()
    row = LoggedMessage.objects.get(direction=LoggedMessage.IN, topic=methods.STOCK_UPDATED)
    assert row.status == LoggedMessage.ERROR
    assert "snapshot.stock[0].quantity" in row.last_error
    assert stock_of() == {}


def test_sources_are_listed_from_the_oms(wired: Any) -> None:
    wired.sandbox.api.add_source("WH-AMS", "Amsterdam", ["EU"], {"city": "Amsterdam", "country_code": "NL"})
    sources = {s.id: s for s in services.search_sources()}
    assert "WH-AMS" in sources
    assert sources["WH-AMS"].aggregate_ids == ("EU",)
    result = CliRunner().invoke(main, ["oms:sources:list"])
    assert result.exit_code == 0, result.output
    assert "WH-AMS" in result.output
    assert "Amsterdam" in result.output


def test_stock_reset_in_developer_mode_goes_through_the_message_log(products: Any, env: Any) -> None:
    deliver(products, "DELTA", "2024-05-01 08:00:00", {"SKU-1": 1})
    result = CliRunner().invoke(main, ["oms:stock:reset"])
    assert result.exit_code == 0, result.output
    assert stock_of() == {f"SKU-{i}": (100, True) for i in range(1, 5)}
    assert index_of() == stock_of()


def test_shipping_method_skus_in_a_snapshot_are_not_unknown(products: Any) -> None:
    from mcom.catalog.models import ShippingMethod

    ShippingMethod.objects.create(code="flatrate_flatrate", carrier="flatrate", method="flatrate", title="Flat Rate")
    out = deliver(products, "DELTA", "2024-05-01 08:00:00", {"SKU-1": 1, "STANDARD": 0, "GHOST": 4})
    assert out["unknown_skus"] == 1
    assert out["unknown_sample"] == ["GHOST"]
    assert out["not_stock"] == 1


def test_sample_store_follows_the_sandbox_default_aggregate(wired: Any) -> None:
    """The demo: sampledata binds the store to the sandbox's ``default`` aggregate, so a snapshot the
    sandbox sends for it changes the store's stock."""
    from mcom.commerce import sampledata
    from mcom.commerce.models import StockStatus, Store

    sampledata.deploy(products=3, orders=0, stores=1, seed=1)
    store = Store.objects.get(code="default")
    assert store.stock_aggregate is not None
    assert store.stock_aggregate.code == "default"
    sku = Product.objects.filter(manage_stock=True).order_by("sku").values_list("sku", flat=True).first()
    assert sku is not None
    deliver(wired, "DELTA", "2030-01-01 08:00:00", {sku: 77}, aggregate="default")
    row = StockStatus.objects.get(product__sku=sku, aggregate=store.stock_aggregate)
    assert row.qty == 77
    assert row.stock_status
