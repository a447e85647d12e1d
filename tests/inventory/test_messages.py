"""Parsing of stock snapshots: lenient forms, strict needs (§8.4, §12 #12, #17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from mcom.inventory import mappers
from mcom.inventory.messages import StockLine, parse_datetime, parse_snapshot
from mcom.service_bus.errors import InvalidPayload


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01 10:20:30", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),  # mock: naive = UTC
        ("2024-05-01T10:20:30Z", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T12:20:30+02:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01 12:20:30 +02:00", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01 12:20:30+0200", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T05:20:30-05", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-05-01T10:20:30.123456789Z", datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01 10:20 UTC", datetime(2024, 5, 1, 10, 20, tzinfo=UTC)),
        (1714558830, datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
    ],
)
def test_lenient_dates(raw: Any, expected: datetime) -> None:
    assert parse_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2024-13-01", "", None, True, "01/05/2024"])
def test_bad_dates(raw: Any) -> None:
    with pytest.raises(ValueError, match="not a date|must be in"):
        parse_datetime(raw)


def _params(**snap: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"aggregate_id": "EU", "created_on": "2024-05-01 10:00:00", "mode": "FULL", "stock": []}
    base.update(snap)
    return {"snapshot": base}


def test_quantities_as_numbers_or_strings_and_unlimited() -> None:
    snap = parse_snapshot(_params(mode="nonzero", stock=[
        {"sku": "A", "quantity": "5"}, {"sku": "B", "quantity": 2.5}, {"sku": "C", "quantity": "0", "unlimited": "true"},
        {"sku": "A", "quantity": 7},  # repeated SKU: last wins
    ]))
    assert snap.mode == "NONZERO"
    assert snap.lines == (
        StockLine("B", Decimal("2.5"), False), StockLine("C", Decimal("0"), True), StockLine("A", Decimal("7"), False)
    )
    assert [ln.in_stock for ln in snap.lines] == [True, True, True]


def test_capitalised_keys_of_fake_mom_api_are_accepted() -> None:
    snap = parse_snapshot({"Snapshot": {"AggregateId": "X", "CreatedOn": "2024-01-01", "Mode": "DELTA", "Stock": [
        {"Sku": "A", "Quantity": "1", "Unlimited": False}]}})
    assert (snap.aggregate_id, snap.mode, snap.lines[0].sku) == ("X", "DELTA", "A")


def test_missing_created_on_uses_the_received_time() -> None:
    received = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    snap = parse_snapshot(_params(created_on=None), received_at=received)
    assert snap.created_on == received.astimezone(UTC)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "snapshot: must be an object"),
        (_params(aggregate_id=""), "snapshot.aggregate_id"),
        (_params(mode="PARTIAL"), "snapshot.mode"),
        (_params(created_on="soon"), "snapshot.created_on"),
        (_params(stock="A"), "snapshot.stock: must be a list"),
        (_params(stock=[{"sku": "A", "quantity": "many"}]), "snapshot.stock[0].quantity"),
        (_params(stock=[{"sku": "A", "quantity": "NaN"}]), "snapshot.stock[0].quantity"),
        (_params(stock=[{"sku": "A", "quantity": True}]), "snapshot.stock[0].quantity"),
        (_params(stock=[{"sku": "A", "quantity": "1e20"}]), "out of range"),
        (_params(stock=[{"quantity": 1}]), "snapshot.stock[0].sku"),
        (_params(stock=["A"]), "snapshot.stock[0]: must be an object"),
        (_params(stock=[{"sku": "A", "quantity": 1, "unlimited": "maybe"}]), "snapshot.stock[0].unlimited"),
    ],
)
def test_bad_payloads_raise_invalid_payload_naming_the_field(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_snapshot(params)


def test_snapshot_round_trip_through_params() -> None:
    snap = parse_snapshot(_params(stock=[{"sku": "A", "quantity": "1.5"}, {"sku": "B", "quantity": 0, "unlimited": True}]))
    assert parse_snapshot(snap.to_params()) == snap


def test_split_into_messages_of_at_most_n_skus() -> None:
    lines = mappers.fixed_quantity((f"S{i}" for i in range(25)), Decimal("100"))
    parts = list(mappers.snapshots("EU", "DELTA", lines, created_on=datetime(2024, 1, 1, tzinfo=UTC), size=10))
    assert [len(p.lines) for p in parts] == [10, 10, 5]
    assert {p.created_on for p in parts} == {datetime(2024, 1, 1, tzinfo=UTC)}
    assert list(mappers.snapshots("EU", "DELTA", [], created_on=datetime(2024, 1, 1, tzinfo=UTC))) == []


@pytest.mark.parametrize(
    ("result", "ids", "total"),
    [
        ([], [], None),
        ({}, [], None),
        (None, [], None),
        ({"items": [{"id": "WH1", "aggregate_ids": [1]}], "total": 74}, ["WH1"], 74),
        ({"items": [{"id": 5}, "junk"], "total": "x"}, ["5"], None),
        ([{"id": "A"}], ["A"], None),
    ],
)
def test_source_pages(result: Any, ids: list[str], total: int | None) -> None:
    sources, got_total = mappers.source_page(result)
    assert [s.id for s in sources] == ids
    assert got_total == total
