"""Inbound return and refund updates, through the message log and the worker (one tick at a time)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from mcom.commerce.models import CreditMemo, Order, OrderItem, Rma
from mcom.postsales import services
from mcom.postsales.models import OmsRefund, RmaLine
from mcom.postsales.services import ReturnLineIn
from mcom.service_bus import inbox, methods, registry, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import MakeOrder


def deliver(method: str, params: dict[str, Any]) -> LoggedMessage:
    """Log an inbound message as the endpoint would and let the worker process what is due."""
    row = inbox.store_inbound(method, params)
    worker.process_inbound()
    row.refresh_from_db()
    return row


def return_updated(order: Order, rma: str, status: str, lines: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    return {"return": {
        "rma": rma, "order_id": order.increment_id, "sales_channel_id": "web", "source_id": "WH1",
        "status": {"code": status, "name": status, "date": "2024-05-01T10:00:00+00:00", "reason_code": "CSRREQUEST"},
        "lines": [{"id": i, "line_number": n, "sku": "X", "reason": "", "status": status} for i, n in lines],
        **extra,
    }}


def _lines(rma: Rma) -> list[tuple[str, int]]:
    return [(ln.line_id, ln.line_number) for ln in RmaLine.objects.filter(rma=rma)]


@pytest.fixture
def requested(make_order: MakeOrder) -> tuple[Order, Rma]:
    order = make_order([("SKU-A", 2, 2), ("SKU-B", 1, 1)])
    a = order.items.get(sku="SKU-A")
    rma = services.request_return(order=order, lines=[ReturnLineIn(qty=D(2), order_item_id=a.pk)])
    return order, rma


# ----------------------------------------------------------------------------- returns


def test_update_before_our_authorize_was_sent_is_matched_by_request_id(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    attrs = [{"attribute_code": "mcom_request_id", "value": rma.request_id}]
    row = deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-1", "requested", _lines(rma),
                                                         custom_attributes=attrs))
    assert row.status == LoggedMessage.COMPLETE, row.last_error
    assert json.loads(row.result)["matched_by"] == "request_id"
    rma.refresh_from_db()
    assert (rma.rma_number, rma.status) == ("RMA-CS-1", "REQUESTED")
    # the authorize is still waiting in the outbox: the answer overtook it
    assert LoggedMessage.objects.get(topic=methods.RETURN_AUTHORIZE).status == LoggedMessage.NEW


def test_update_without_our_request_id_is_matched_by_its_lines(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    row = deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-7", "REQUESTED", _lines(rma)))
    assert json.loads(row.result)["matched_by"] == "lines"
    assert Rma.objects.get(pk=rma.pk).rma_number == "RMA-CS-7"


def test_approval_sets_status_line_statuses_tracking_and_returned_quantity(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-1", "REQUESTED", _lines(rma)))
    row = deliver(methods.RETURN_UPDATED, return_updated(
        order, "RMA-CS-1", "Approved", _lines(rma), return_tracking_carrier="DHL", return_tracking_number="TRK1",
        return_tracking_url="https://t.example/TRK1", return_tracking_label_url="https://t.example/label.pdf"))
    assert json.loads(row.result)["matched_by"] == "rma"
    rma.refresh_from_db()
    assert rma.status == "APPROVED"
    assert (rma.tracking_carrier, rma.tracking_number, rma.tracking_url, rma.label_url) == (
        "DHL", "TRK1", "https://t.example/TRK1", "https://t.example/label.pdf")
    assert [i.status for i in rma.items.all()] == ["APPROVED"]
    assert set(RmaLine.objects.filter(rma=rma).values_list("status", flat=True)) == {"APPROVED"}
    assert OrderItem.objects.get(order=order, sku="SKU-A").qty_returned == D(2)


def test_unknown_status_is_kept_verbatim_and_repeats_are_harmless(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    params = return_updated(order, "RMA-CS-1", "InTransitBack", _lines(rma))
    deliver(methods.RETURN_UPDATED, params)
    deliver(methods.RETURN_UPDATED, params)
    assert Rma.objects.get(pk=rma.pk).status == "InTransitBack"
    assert Rma.objects.filter(order=order).count() == 1


def test_rejection_frees_the_quantity_for_a_new_request(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-1", "REJECTED", _lines(rma)))
    again = services.request_return(order=order, lines=[ReturnLineIn(qty=D(2), sku="SKU-A")])
    assert _lines(again) == _lines(rma)


def test_rma_created_in_the_oms_is_mirrored(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)])
    item = order.items.get()
    row = deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-OMS-9", "APPROVED", [(str(item.pk), 1)]))
    assert json.loads(row.result)["matched_by"] == "created"
    rma = Rma.objects.get(rma_number="RMA-OMS-9")
    assert [(i.order_item_id, i.qty) for i in rma.items.all()] == [(item.pk, D(1))]
    assert OrderItem.objects.get(pk=item.pk).qty_returned == D(1)


def test_update_for_an_unknown_order_is_retried_later(db: None) -> None:
    row = deliver(methods.RETURN_UPDATED, {"return": {"rma": "R", "order_id": "999", "status": "REQUESTED"}})
    assert row.status == LoggedMessage.RETRY
    assert "order 999 is not known" in row.last_error


def test_malformed_return_update_is_parked_with_its_error(db: None) -> None:
    row = deliver(methods.RETURN_UPDATED, {"return": {"rma": "R"}})
    assert row.status == LoggedMessage.ERROR
    assert "InvalidPayload: return.order_id: Field required" in row.last_error


def test_authorize_answer_records_the_rma_number_unless_an_update_did(requested: tuple[Order, Rma]) -> None:
    order, rma = requested
    msg = LoggedMessage.objects.get(topic=methods.RETURN_AUTHORIZE)
    out = registry.OutboundMessage(msg.pk, msg.topic, msg.message_id, msg.entity_key, json.loads(msg.payload), 1)
    services.authorize_sent(out, {"rma": "RMA-CS-1", "status": "REQUESTED"})
    rma.refresh_from_db()
    assert (rma.rma_number, rma.status) == ("RMA-CS-1", "REQUESTED")
    deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-1", "APPROVED", _lines(rma)))
    services.authorize_sent(out, {"rma": "RMA-CS-1", "status": "REQUESTED"})  # late answer: no step back
    assert Rma.objects.get(pk=rma.pk).status == "APPROVED"


def test_refused_authorize_marks_the_return_failed(requested: tuple[Order, Rma]) -> None:
    _, rma = requested
    msg = LoggedMessage.objects.get(topic=methods.RETURN_AUTHORIZE)
    out = registry.OutboundMessage(msg.pk, msg.topic, msg.message_id, msg.entity_key, json.loads(msg.payload), 1)
    services.authorize_failed(out, "JSON-RPC error -32602: line not shipped", True)
    assert Rma.objects.get(pk=rma.pk).status == Rma.STATUS_PENDING  # will be retried
    services.authorize_failed(out, "JSON-RPC error -32602: line not shipped", False)
    assert Rma.objects.get(pk=rma.pk).status == services.STATUS_FAILED


# ----------------------------------------------------------------------------- refunds


def refund_updated(order: Order, rma: str, status: str, lines: list[tuple[str, str, str, str]],
                   credit_note: str = "CDE1") -> dict[str, Any]:
    """``lines``: (order_item_id, gross, net, vat) per refunded wire line."""
    return {"refund": {
        "rma": rma, "order_id": order.increment_id, "sales_channel_id": "web", "store_id": "WH1",
        "credit_note_number": credit_note, "credit_note_date": "2024-05-02T10:00:00+00:00",
        "refund_reason": "RELEASESUCCESS", "refund_type": "Return", "user": "LOGISTICS", "custom_attributes": [],
        "status": {"code": status, "name": status, "date": "2024-05-02T10:00:00+00:00", "reason_code": "REQUESTED"},
        "lines": [{"order_item_id": i, "order_line": "", "reason": "", "payments": [{
            "details": {"cost_gross": g, "cost_net": n, "cost_vat": v, "vat_rate": 21,
                        "vat_detail": [{"type": "VAT", "amount": v, "rate": 21}]},
            "status": {"code": "REFUNDED", "name": "REFUNDED"}}]} for i, g, n, v in lines],
    }}


@pytest.fixture
def approved(requested: tuple[Order, Rma]) -> tuple[Order, Rma]:
    order, rma = requested
    deliver(methods.RETURN_UPDATED, return_updated(order, "RMA-CS-1", "APPROVED", _lines(rma)))
    rma.refresh_from_db()
    return order, rma


def test_released_refund_creates_the_credit_memo_with_its_amounts(approved: tuple[Order, Rma]) -> None:
    order, rma = approved
    a = order.items.get(sku="SKU-A")
    row = deliver(methods.REFUND_UPDATED, refund_updated(order, "RMA-CS-1", "RELEASED", [
        (f"{a.pk}-1", "12.10", "10.00", "2.10"), (f"{a.pk}-2", "12.10", "10.00", "2.10")]))
    assert row.status == LoggedMessage.COMPLETE, row.last_error
    memo = CreditMemo.objects.get(order=order)
    assert (memo.credit_note_number, memo.rma_id, memo.reason) == ("CDE1", rma.pk, "RELEASESUCCESS")
    assert (memo.subtotal, memo.tax_amount, memo.grand_total) == (D("20.00"), D("4.20"), D("24.20"))
    [line] = memo.items.all()
    assert (line.order_item_id, line.qty, line.row_total, line.tax_amount, line.row_total_incl_tax, line.tax_percent) == (
        a.pk, D(2), D("20.00"), D("4.20"), D("24.20"), D(21))
    order.refresh_from_db()
    assert order.total_refunded == D("24.20")
    assert OrderItem.objects.get(pk=a.pk).qty_refunded == D(2)
    assert order.state == Order.STATE_PROCESSING  # SKU-B is not refunded: the order stays open
    assert OmsRefund.objects.get(order=order).credit_memo_id == memo.pk


def test_full_refund_closes_the_order(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)], shipping_amount=D("5.00"))
    item = order.items.get()
    deliver(methods.REFUND_UPDATED, refund_updated(order, "", "RELEASED", [
        (str(item.pk), "12.10", "10.00", "2.10"), ("SHIPPING", "6.05", "5.00", "1.05")]))
    order.refresh_from_db()
    memo = CreditMemo.objects.get(order=order)
    assert (memo.subtotal, memo.tax_amount, memo.grand_total) == (D("10.00"), D("3.15"), D("18.15"))
    assert (order.state, order.status) == (Order.STATE_CLOSED, "closed")
    assert order.status_history.filter(source="oms", comment__contains="fully refunded").exists()


def test_repeated_refund_delivery_creates_one_credit_memo(approved: tuple[Order, Rma]) -> None:
    order, _ = approved
    a = order.items.get(sku="SKU-A")
    params = refund_updated(order, "RMA-CS-1", "RELEASED", [(f"{a.pk}-1", "12.10", "10.00", "2.10")])
    first = deliver(methods.REFUND_UPDATED, params)
    second = deliver(methods.REFUND_UPDATED, params)
    assert json.loads(first.result)["duplicate"] is False
    assert second.status == LoggedMessage.COMPLETE
    assert json.loads(second.result)["duplicate"] is True
    assert CreditMemo.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.total_refunded == D("12.10")
    assert OrderItem.objects.get(pk=a.pk).qty_refunded == D(1)


def test_pending_release_is_recorded_without_credit_memo_until_released(approved: tuple[Order, Rma]) -> None:
    order, rma = approved
    a = order.items.get(sku="SKU-A")
    lines = [(f"{a.pk}-1", "12.10", "10.00", "2.10")]
    row = deliver(methods.REFUND_UPDATED, refund_updated(order, "RMA-CS-1", "PendingRelease", lines))
    assert json.loads(row.result)["credit_memo"] is None
    record = OmsRefund.objects.get(order=order)
    assert (record.status, record.rma_id, record.credit_memo_id) == ("PENDINGRELEASE", rma.pk, None)
    assert not CreditMemo.objects.filter(order=order).exists()
    assert Order.objects.get(pk=order.pk).total_refunded == 0
    deliver(methods.REFUND_UPDATED, refund_updated(order, "RMA-CS-1", "RELEASED", lines))
    record.refresh_from_db()
    assert record.status == "RELEASED"
    assert record.credit_memo is not None
    assert OmsRefund.objects.filter(order=order).count() == 1


def test_refund_for_an_unknown_order_is_retried_later(db: None) -> None:
    row = deliver(methods.REFUND_UPDATED, {"refund": {"order_id": "404", "status": "RELEASED",
                                                     "credit_note_number": "C1"}})
    assert row.status == LoggedMessage.RETRY
    assert "order 404 is not known" in row.last_error


@pytest.mark.parametrize(("mutate", "error"), [
    (lambda p: p["refund"].pop("status"), "refund.status: Field required"),
    (lambda p: p["refund"].update(credit_note_number=""), "credit_note_number is required"),
    (lambda p: p["refund"]["lines"][0].update(order_item_id="777-9"), "order line '777-9' is not a line"),
    (lambda p: p["refund"]["lines"][0]["payments"][0]["details"].update(cost_gross="12,10"),
     "refund.lines.0.payments.0.details.cost_gross"),
])
def test_malformed_refund_is_parked_with_its_error(approved: tuple[Order, Rma], mutate: Any, error: str) -> None:
    order, _ = approved
    a = order.items.get(sku="SKU-A")
    params = refund_updated(order, "RMA-CS-1", "RELEASED", [(f"{a.pk}-1", "12.10", "10.00", "2.10")])
    mutate(params)
    row = deliver(methods.REFUND_UPDATED, params)
    assert row.status == LoggedMessage.ERROR
    assert error in row.last_error
    assert not CreditMemo.objects.filter(order=order).exists()


def test_order_stays_open_while_its_shipping_is_not_refunded(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)], shipping_amount=D("5.00"))
    Order.objects.filter(pk=order.pk).update(grand_total=D("18.15"))  # 12.10 item + 6.05 shipping
    item = order.items.get()
    deliver(methods.REFUND_UPDATED, refund_updated(order, "", "RELEASED", [(str(item.pk), "12.10", "10.00", "2.10")]))
    order.refresh_from_db()
    assert order.state != Order.STATE_CLOSED
    assert order.status_history.filter(comment__contains="shipping (5.00").exists()
    deliver(methods.REFUND_UPDATED, refund_updated(order, "", "RELEASED", [("SHIPPING", "6.05", "5.00", "1.05")],
                                                   credit_note="CDE2"))
    order.refresh_from_db()
    assert (order.state, order.status) == (Order.STATE_CLOSED, "closed")
