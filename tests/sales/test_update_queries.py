"""The order-update handler's database work is pinned, so a regression (a save per line, a re-read after
the write, a lazily loaded product, a status history row for nothing) fails here. The real handler on
the real database (inside the test's transaction, as inside the worker's: no savepoint of its own).

Per applied update: lock the order (1), read its items (1), one UPDATE per distinct line change (1 when
every line got the same status), the order's UPDATE (1), the history comment (1). A repeat reads only;
a stale update reads only the order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from tests.sales.conftest import PlaceOrder

from mcom.commerce.models import Order, OrderItem, OrderStatusHistory, Product
from mcom.sales import lifecycle, mappers, messages
from mcom.service_bus.errors import RetryLater


def line_ids(order: Order) -> list[str]:
    items = list(OrderItem.objects.filter(order=order).select_related("product"))
    return list(mappers.line_index(items).by_id)


def update(order: Order, status: str, date: str, lines: dict[str, str]) -> dict[str, Any]:
    return {"order": {"id": order.increment_id, "status": status, "status_reason": "", "status_date": date,
                      "lines": [{"id": lid, "status": st} for lid, st in lines.items()]
                      + [{"id": "SHIPPING", "status": "SHIPPED"}]}}


def apply(params: dict[str, Any]) -> dict[str, Any]:
    return lifecycle.apply_order_update(messages.parse_order_update(params))


def oms_comments(order: Order) -> list[str]:
    return list(OrderStatusHistory.objects.filter(order=order, source=OrderStatusHistory.SOURCE_OMS)
                .values_list("comment", flat=True))


def test_an_order_update_takes_five_queries_however_many_lines(
    place: PlaceOrder, django_assert_num_queries: Any
) -> None:
    order = place(lines=[("SKU-A", 3), ("SKU-B", 2), ("EBOOK", 1)])  # 6 OMS lines, 3 items
    ids = line_ids(order)
    with django_assert_num_queries(5):
        result = apply(update(order, "COMPLETE", "2026-05-01 10:00:00", dict.fromkeys(ids, "SHIPPED")))
    assert result["lines_changed"] == 3
    order.refresh_from_db()
    assert (order.oms_status, order.state, order.status) == ("COMPLETE", Order.STATE_COMPLETE, "complete")
    assert order.oms_status_date is not None
    assert order.oms_status_date.isoformat() == "2026-05-01T10:00:00+00:00"
    assert {i.sku: i.oms_status for i in order.items.all()} == {"SKU-A": "SHIPPED", "SKU-B": "SHIPPED",
                                                              "EBOOK": "SHIPPED"}
    assert oms_comments(order) == ["OMS status COMPLETE"]


def test_the_same_update_again_only_reads(place: PlaceOrder, django_assert_num_queries: Any) -> None:
    order = place()
    params = update(order, "LOGISTICS", "2026-05-01 10:00:00", dict.fromkeys(line_ids(order), "ALLOCATED"))
    apply(params)
    with django_assert_num_queries(2):
        result = apply(params)
    assert result["lines_changed"] == 0
    assert oms_comments(order) == ["OMS status LOGISTICS"]  # no second comment


def test_a_stale_update_reads_only_the_order(place: PlaceOrder, django_assert_num_queries: Any) -> None:
    order = place()
    ids = line_ids(order)
    apply(update(order, "COMPLETE", "2026-05-02 10:00:00", dict.fromkeys(ids, "SHIPPED")))
    with django_assert_num_queries(1):
        result = apply(update(order, "NEW", "2026-05-01 10:00:00", dict.fromkeys(ids, "NEW")))
    assert result["result"] == "stale"
    order.refresh_from_db()
    assert {i.oms_status for i in order.items.all()} == {"SHIPPED"}


def test_lines_changing_differently_take_one_update_per_distinct_change(
    place: PlaceOrder, django_assert_num_queries: Any
) -> None:
    order = place(lines=[("SKU-A", 2), ("SKU-B", 1)])  # lines <a>-1, <a>-2, <b>
    a, b = order.items.order_by("id")
    lines = {f"{a.pk}-1": "SHIPPED", f"{a.pk}-2": "CANCELLED", str(b.pk): "CANCELLED"}
    with django_assert_num_queries(6):  # SKU-A: 1 shipped, 1 cancelled; SKU-B: cancelled
        result = apply(update(order, "LOGISTICS", "2026-05-01 10:00:00", lines))
    assert result["lines_changed"] == 2
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.oms_status, a.qty_canceled) == ("1 SHIPPED, 1 CANCELLED", Decimal(1))
    assert (b.oms_status, b.qty_canceled) == ("CANCELLED", Decimal(1))


def test_a_bundle_order_reads_the_catalog_prices_once(place: PlaceOrder, django_assert_num_queries: Any) -> None:
    Product.objects.create(sku="KIT", name="Kit", type=Product.TYPE_BUNDLE, price=Decimal("30.00"),
                           children_skus=["SKU-A", "SKU-B"])
    order = place(lines=[("KIT", 1)])
    ids = line_ids(order)  # the bundle's children are the lines
    assert len(ids) == 2
    with django_assert_num_queries(6):  # + the products (id, price) of the line plan
        apply(update(order, "COMPLETE", "2026-05-01 10:00:00", dict.fromkeys(ids, "SHIPPED")))
    statuses = {i.sku: i.oms_status for i in order.items.all()}
    assert statuses == {"KIT": "", "SKU-A": "SHIPPED", "SKU-B": "SHIPPED"}


@pytest.mark.parametrize("lines", [{"999999": "SHIPPED"}, {}])
def test_an_unknown_line_still_waits_and_an_update_without_lines_still_applies(
    place: PlaceOrder, lines: dict[str, str]
) -> None:
    order = place()
    params = update(order, "APPROVED", "2026-05-01 10:00:00", lines)
    if lines:
        # no savepoint of its own: like the worker, the caller's transaction (here a savepoint) rolls back
        with pytest.raises(RetryLater, match="unknown line"), transaction.atomic():
            apply(params)
        order.refresh_from_db()
        assert order.oms_status == ""
    else:
        apply(params)
        order.refresh_from_db()
        assert (order.oms_status, order.state) == ("APPROVED", Order.STATE_PROCESSING)


def test_a_shipment_writes_its_items_shipped_quantities_in_one_update(
    place: PlaceOrder, django_assert_num_queries: Any
) -> None:
    order = place(lines=[("SKU-A", 2), ("SKU-B", 1), ("EBOOK", 1)])
    a, b, _ = order.items.order_by("id")
    shipment = {"shipment": {"shipment_id": "S-1", "order_id": order.increment_id, "shipment_date": "2026-05-01",
                             "packages": [{"carrier": "DHL", "tracking_number": "T1", "aggregated_items": [
                                 {"sku": "SKU-A", "quantity": 2, "order_lines": [f"{a.pk}-1", f"{a.pk}-2"]},
                                 {"sku": "SKU-B", "quantity": 1, "order_lines": [str(b.pk)]}]}]}}
    params = messages.parse_shipment_done(shipment)
    # lock, duplicate check, items, shipment, its items, tracks, ONE items UPDATE, order UPDATE, comment
    with django_assert_num_queries(9):
        result = lifecycle.record_shipment(params, shipment)
    assert result["items"] == 2
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.qty_shipped, b.qty_shipped) == (Decimal(2), Decimal(1))
    with django_assert_num_queries(2):  # a repeat: lock, duplicate found
        assert lifecycle.record_shipment(params, shipment)["duplicate"] is True
