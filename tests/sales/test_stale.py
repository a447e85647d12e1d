"""State-based OMS messages apply only forward: an order update (``status_date``) or a shipment
(``shipment_date``) older than the state applied to the order is recorded as stale (the message is
``complete`` with result ``stale``) and changes nothing. Through the real inbound log and worker."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.sales.conftest import PlaceOrder

from mcom.commerce.models import Order, OrderStatusHistory
from mcom.service_bus import inbox, methods, worker
from mcom.service_bus.models import LoggedMessage

pytestmark = pytest.mark.usefixtures("env")


def update(order_id: str, status: str, date: str, reason: str = "") -> dict[str, Any]:
    return {"order": {"id": order_id, "status": status, "status_reason": reason, "status_date": date, "lines": []}}


def deliver(method: str, params: dict[str, Any]) -> LoggedMessage:
    msg = inbox.store_inbound(method, params)
    worker.run_until_idle()
    msg.refresh_from_db()
    return msg


SEQUENCE = [  # oldest first
    ("NEW", "2026-03-01 10:00:00"),
    ("APPROVED", "2026-03-01 11:00:00"),
    ("LOGISTICS", "2026-03-02T09:00:00+00:00"),
    ("LOGISTICSCOMPLETE", "2026-03-03 08:00:00"),
    ("COMPLETE", "2026-03-04T12:00:00Z"),
]


def test_five_updates_delivered_newest_first_leave_the_newest_state(place: PlaceOrder) -> None:
    order = place()
    ids = [inbox.store_inbound(methods.ORDER_UPDATED, update(order.increment_id, s, d)).pk
           for s, d in reversed(SEQUENCE)]
    worker.run_until_idle()
    order.refresh_from_db()
    msgs = [LoggedMessage.objects.get(pk=i) for i in ids]
    results = [json.loads(m.result) for m in msgs]
    stale = sum(1 for r in results if r.get("result") == "stale")
    print(f"reversed sequence: 5 delivered, {stale} stale, final {order.oms_status}/{order.state}")
    assert [m.status for m in msgs] == [LoggedMessage.COMPLETE] * 5
    assert (order.oms_status, order.state, order.status) == ("COMPLETE", Order.STATE_COMPLETE, "complete")
    assert [r.get("result") for r in results] == [None, "stale", "stale", "stale", "stale"]
    assert order.oms_status_date is not None
    assert order.oms_status_date.isoformat() == "2026-03-04T12:00:00+00:00"
    comments = list(OrderStatusHistory.objects.filter(order=order, source=OrderStatusHistory.SOURCE_OMS)
                    .values_list("comment", flat=True))
    assert comments == ["OMS status COMPLETE"]  # the stale ones left no trace in the history


def test_updates_in_order_are_all_applied(place: PlaceOrder) -> None:
    order = place()
    for status, date in SEQUENCE:
        msg = deliver(methods.ORDER_UPDATED, update(order.increment_id, status, date))
        assert json.loads(msg.result).get("result") != "stale"
        order.refresh_from_db()
        assert order.oms_status == status
    assert order.state == Order.STATE_COMPLETE


def test_a_late_new_dated_2020_does_not_reopen_a_completed_order(place: PlaceOrder) -> None:
    order = place()
    deliver(methods.ORDER_UPDATED, update(order.increment_id, "COMPLETE", "2026-05-01 10:00:00"))
    msg = deliver(methods.ORDER_UPDATED, update(order.increment_id, "NEW", "2020-01-01 00:00:00"))
    order.refresh_from_db()
    assert msg.status == LoggedMessage.COMPLETE
    assert json.loads(msg.result) == {
        "order": order.increment_id, "result": "stale", "stale": True, "date": "2020-01-01T00:00:00+00:00",
        "applied_date": "2026-05-01T10:00:00+00:00"}
    assert (order.state, order.status, order.oms_status) == (Order.STATE_COMPLETE, "complete", "COMPLETE")


def test_a_shipment_older_than_the_applied_state_keeps_the_state_but_records_the_goods(place: PlaceOrder) -> None:
    order = place(lines=[("SKU-A", 1)])
    item = order.items.get()
    deliver(methods.ORDER_UPDATED, update(order.increment_id, "NEW", "2026-05-02 10:00:00"))
    deliver(methods.ORDER_UPDATED, update(order.increment_id, "APPROVED", "2026-05-03 10:00:00"))
    order.refresh_from_db()
    assert order.state == Order.STATE_PROCESSING
    shipment = {"shipment": {"shipment_id": "S-1", "order_id": order.increment_id, "shipment_date": "2026-05-01 09:00:00",
                             "items": [{"order_line_id": str(item.pk), "sku": "SKU-A", "quantity": 1}]}}
    msg = deliver(methods.SHIPMENT_DONE, shipment)
    order.refresh_from_db()
    result = json.loads(msg.result)
    assert msg.status == LoggedMessage.COMPLETE
    assert result["result"] == "stale"
    assert result["items"] == 1
    assert order.state == Order.STATE_PROCESSING  # not completed by an older shipment
    assert order.shipments.count() == 1
    # a later-dated shipment moves the state forward as before
    shipment["shipment"].update(shipment_id="S-0", shipment_date="2026-05-04 09:00:00")
    deliver(methods.SHIPMENT_DONE, shipment)
    order.refresh_from_db()
    assert order.oms_status_date is not None
    assert order.oms_status_date.isoformat() == "2026-05-04T09:00:00+00:00"


def test_a_shipment_that_completed_the_order_makes_an_older_update_stale(place: PlaceOrder) -> None:
    order = place(lines=[("SKU-A", 1)])
    item = order.items.get()
    deliver(methods.SHIPMENT_DONE, {"shipment": {
        "shipment_id": "S-9", "order_id": order.increment_id, "shipment_date": "2026-06-01T08:00:00Z",
        "items": [{"order_line_id": str(item.pk), "sku": "SKU-A", "quantity": 1}]}})
    order.refresh_from_db()
    assert order.state == Order.STATE_COMPLETE
    msg = deliver(methods.ORDER_UPDATED, update(order.increment_id, "NEW", "2020-01-01 00:00:00"))
    order.refresh_from_db()
    assert json.loads(msg.result)["result"] == "stale"
    assert order.state == Order.STATE_COMPLETE


def test_an_update_without_a_date_is_applied(place: PlaceOrder) -> None:
    order = place()
    deliver(methods.ORDER_UPDATED, update(order.increment_id, "COMPLETE", "2026-05-01 10:00:00"))
    deliver(methods.ORDER_UPDATED, update(order.increment_id, "APPROVED", ""))
    order.refresh_from_db()
    assert order.oms_status == "APPROVED"
