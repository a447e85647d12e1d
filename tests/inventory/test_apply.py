"""Applying stock snapshots to the real database: modes, staleness, unknown SKUs, reindex."""

from __future__ import annotations

from typing import Any

import pytest

from mcom.commerce.models import Product, StockAggregate, StockItem
from mcom.inventory.services import apply_stock_update
from mcom.service_bus.errors import InvalidPayload

from .conftest import index_of, snapshot, stock_of

pytestmark = pytest.mark.django_db

T1, T2, T3 = "2024-05-01 10:00:00", "2024-05-01 11:00:00", "2024-05-01 12:00:00"


def apply(params: dict[str, Any]) -> dict[str, Any]:
    return apply_stock_update(params)


def test_full_snapshot_sets_listed_skus_and_leaves_missing_known_skus_unchanged(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "SKU-2": 2, "SKU-3": 3}))
    out = apply(snapshot(mode="FULL", created_on=T2, **{"SKU-1": "10", "SKU-2": 0}))
    assert stock_of() == {"SKU-1": (10, True), "SKU-2": (0, False), "SKU-3": (3, True)}  # SKU-3 unchanged
    assert out["applied"] == 2
    # SKU-3 (older row), SKU-4 and SKU-5 (no row) are known but not covered; VIRT manages no stock
    assert out["not_in_snapshot"] == 3
    assert out["not_in_snapshot_sample"] == ["SKU-3", "SKU-4", "SKU-5"]
    assert index_of() == {"SKU-1": (10, True), "SKU-2": (0, False), "SKU-3": (3, True)}


def test_nonzero_snapshot_zeroes_missing_skus_except_unlimited(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "SKU-2": 2, "SKU-3": ("0", True)}))
    out = apply(snapshot(mode="NONZERO", created_on=T2, **{"SKU-1": 7}))
    assert stock_of() == {"SKU-1": (7, True), "SKU-2": (0, False), "SKU-3": (0, True)}
    assert out["zeroed"] == 1
    assert index_of() == {"SKU-1": (7, True), "SKU-2": (0, False), "SKU-3": (0, True)}


def test_parts_of_one_nonzero_snapshot_do_not_zero_each_other(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "SKU-2": 2, "SKU-3": 3, "SKU-4": 4}))
    apply(snapshot(mode="NONZERO", created_on=T2, **{"SKU-1": 11, "SKU-2": 12}))
    apply(snapshot(mode="NONZERO", created_on=T2, **{"SKU-3": 13}))
    assert stock_of() == {"SKU-1": (11, True), "SKU-2": (12, True), "SKU-3": (13, True), "SKU-4": (0, False)}
    # same final state in the other order
    apply(snapshot(mode="NONZERO", created_on=T3, **{"SKU-3": 23}))
    apply(snapshot(mode="NONZERO", created_on=T3, **{"SKU-1": 21, "SKU-2": 22}))
    assert stock_of() == {"SKU-1": (21, True), "SKU-2": (22, True), "SKU-3": (23, True), "SKU-4": (0, False)}
    assert index_of() == stock_of()


def test_delta_snapshot_changes_only_listed_skus(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "SKU-2": 2}))
    out = apply(snapshot(mode="DELTA", created_on=T2, **{"SKU-2": 5}))
    assert stock_of() == {"SKU-1": (1, True), "SKU-2": (5, True)}
    assert "not_in_snapshot" not in out
    assert out["zeroed"] == 0
    assert out["reindexed"] == 1


def test_an_older_snapshot_never_overwrites_newer_stock(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on="2024-05-01T12:00:00+02:00", **{"SKU-1": 5}))  # = 10:00 UTC
    out = apply(snapshot(mode="DELTA", created_on="2024-05-01 09:59:59", **{"SKU-1": 1, "SKU-2": 2}))
    assert stock_of() == {"SKU-1": (5, True), "SKU-2": (2, True)}
    assert (out["stale"], out["applied"]) == (1, 1)
    # an older NONZERO does not zero newer rows either
    out = apply(snapshot(mode="NONZERO", created_on="2024-05-01 09:00:00", **{"SKU-3": 3}))
    assert stock_of()["SKU-1"] == (5, True)
    # the same time again is applied (redelivery is idempotent)
    apply(snapshot(mode="DELTA", created_on="2024-05-01 10:00:00Z", **{"SKU-1": 6}))
    assert stock_of()["SKU-1"] == (6, True)


def test_stale_rows_are_per_aggregate(catalog: Any, eu: Any) -> None:
    apply(snapshot(aggregate="EU", mode="DELTA", created_on=T3, **{"SKU-1": 5}))
    apply(snapshot(aggregate="US", mode="DELTA", created_on=T1, **{"SKU-1": 9}))
    assert stock_of("EU") == {"SKU-1": (5, True)}
    assert stock_of("US") == {"SKU-1": (9, True)}


def test_unknown_skus_are_reported_not_fatal(catalog: Any, eu: Any) -> None:
    out = apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "NOPE-2": 3, "NOPE-1": 2}))
    assert out["unknown_skus"] == 2
    assert out["unknown_sample"] == ["NOPE-1", "NOPE-2"]
    assert stock_of() == {"SKU-1": (1, True)}


def test_unknown_aggregate_is_created_and_reported(catalog: Any) -> None:
    out = apply(snapshot(aggregate="APAC", mode="DELTA", created_on=T1, **{"SKU-1": 1}))
    assert out["aggregate_created"] is True
    assert StockAggregate.objects.filter(code="APAC").exists()
    assert apply(snapshot(aggregate="APAC", mode="DELTA", created_on=T2))["aggregate_created"] is False


def test_virtual_products_are_always_in_stock_in_the_index(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"VIRT": 0}))
    assert stock_of() == {"VIRT": (0, False)}
    assert index_of() == {"VIRT": (0, True)}


def test_bad_payload_raises_invalid_payload_and_writes_nothing(catalog: Any, eu: Any) -> None:
    with pytest.raises(InvalidPayload):
        apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1, "SKU-2": "lots"}))
    assert not StockItem.objects.exists()


def test_decimal_quantities_are_kept_exactly(catalog: Any, eu: Any) -> None:
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": "2.5", "SKU-2": "-1"}))
    items = dict(StockItem.objects.values_list("product__sku", "qty"))
    assert str(items["SKU-1"]) in ("2.5", "2.5000")
    assert stock_of()["SKU-2"] == (-1, False)


def test_reapplying_the_same_message_is_idempotent(catalog: Any, eu: Any) -> None:
    params = snapshot(mode="NONZERO", created_on=T1, **{"SKU-1": 1, "SKU-2": 2})
    apply(params)
    first = (stock_of(), index_of())
    apply(params)
    assert (stock_of(), index_of()) == first
    assert Product.objects.count() == 6


def test_the_cyclic_collector_waits_while_a_snapshot_is_applied_and_is_restored_after(
        catalog: Any, eu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from mcom.inventory import stock

    seen: list[bool] = []
    real_apply = stock.apply_snapshot

    def apply_snapshot(snap: Any) -> Any:
        seen.append(gc.isenabled())  # the SQLite document of 10,000 lines is built in here
        return real_apply(snap)

    monkeypatch.setattr(stock, "apply_snapshot", apply_snapshot)
    assert gc.isenabled()
    apply(snapshot(mode="DELTA", created_on=T1, **{"SKU-1": 1}))
    assert seen == [False]
    assert gc.isenabled()
    with pytest.raises(InvalidPayload):
        apply({"snapshot": {"aggregate_id": "eu", "mode": "SOMETIMES"}})
    assert gc.isenabled()  # restored after a refused message too
