"""Requesting a return: validation rules, the RMA saved and the authorize message queued atomically."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from mcom.commerce.models import Order, Rma
from mcom.postsales import services
from mcom.postsales.models import RmaLine
from mcom.postsales.services import InvalidReturnRequest, ReturnLineIn
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage

from .conftest import CHANNEL, MakeOrder


def _outbox() -> list[LoggedMessage]:
    return list(LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic=methods.RETURN_AUTHORIZE).order_by("id"))


def _errors(excinfo: pytest.ExceptionInfo[InvalidReturnRequest]) -> dict[tuple[str | int, ...], str]:
    return dict(excinfo.value.errors)


def test_request_creates_pending_rma_and_queues_authorize_under_the_order_key(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 2, 2), ("SKU-B", 1, 1)])
    a, b = order.items.order_by("id")
    rma = services.request_return(
        order=order, reason="wrong size", user="admin",
        lines=[ReturnLineIn(qty=D(2), order_item_id=a.pk, condition="NEW"), ReturnLineIn(qty=D(1), sku="SKU-B")],
    )
    assert rma.status == Rma.STATUS_PENDING
    assert rma.rma_number is None
    assert rma.request_id
    assert [(i.order_item_id, i.qty, i.reason) for i in rma.items.order_by("id")] == [
        (a.pk, D(2), "wrong size"), (b.pk, D(1), "wrong size")]
    [msg] = _outbox()
    assert msg.entity_key == f"order:{order.increment_id}"
    assert msg.kind == LoggedMessage.KIND_DELEGATE
    params = json.loads(msg.payload)["return"]
    assert params["order_id"] == order.increment_id
    assert params["sales_channel_id"] == CHANNEL
    assert params["source_id"] == "WH1"
    assert params["user"] == "admin"
    assert {"attribute_code": "mcom_request_id", "name": "mcom_request_id", "value": rma.request_id} in params[
        "custom_attributes"]
    # one OMS line per unit, with the ids and numbers the sales module exported
    assert [(ln["id"], ln["line_number"], ln["sku"], ln["condition"]) for ln in params["lines"]] == [
        (f"{a.pk}-1", 1, "SKU-A", "NEW"), (f"{a.pk}-2", 2, "SKU-A", "NEW"), (str(b.pk), 3, "SKU-B", "")]
    assert list(RmaLine.objects.filter(rma=rma).values_list("line_id", flat=True)) == [
        f"{a.pk}-1", f"{a.pk}-2", str(b.pk)]


def test_second_return_takes_the_remaining_units(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 3, 3)])
    item = order.items.get()
    services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), order_item_id=item.pk)])
    services.request_return(order=order, lines=[ReturnLineIn(qty=D(2), order_item_id=item.pk)])
    first, second = (json.loads(m.payload)["return"]["lines"] for m in _outbox())
    assert [ln["id"] for ln in first] == [f"{item.pk}-1"]
    assert [ln["id"] for ln in second] == [f"{item.pk}-2", f"{item.pk}-3"]


def test_quantity_above_shipped_minus_already_requested_is_refused(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 3, 2)])
    item = order.items.get()
    services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), order_item_id=item.pk)])
    with pytest.raises(InvalidReturnRequest) as e:
        services.request_return(order=order, lines=[ReturnLineIn(qty=D(2), order_item_id=item.pk)])
    assert _errors(e) == {("lines", 0, "qty"): "2 is more than the 1 returnable of SKU-A "
                                                "(shipped 2, already returned or requested 1)"}
    assert len(_outbox()) == 1
    assert Rma.objects.count() == 1


def test_lines_of_one_request_add_up(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 2, 2)])
    item = order.items.get()
    with pytest.raises(InvalidReturnRequest) as e:
        services.request_return(order=order, lines=[ReturnLineIn(qty=D(2), order_item_id=item.pk),
                                                    ReturnLineIn(qty=D(1), sku="SKU-A")])
    assert list(_errors(e)) == [("lines", 1, "qty")]


def test_rejected_or_failed_returns_free_their_quantity(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)])
    item = order.items.get()
    first = services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), order_item_id=item.pk)])
    Rma.objects.filter(pk=first.pk).update(status="REJECTED")
    second = services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), order_item_id=item.pk)])
    Rma.objects.filter(pk=second.pk).update(status=services.STATUS_FAILED)
    services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), order_item_id=item.pk)])
    assert Rma.objects.filter(order=order).count() == 3


def test_every_invalid_line_is_reported_with_its_location(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 2, 2), ("SKU-B", 1, 0), ("SKU-C", 1, 1), ("SKU-C", 1, 1)])
    with pytest.raises(InvalidReturnRequest) as e:
        services.request_return(order=order, lines=[
            ReturnLineIn(qty=D(1), sku="SKU-B"),            # not shipped
            ReturnLineIn(qty=D(0), sku="SKU-A"),            # qty 0
            ReturnLineIn(qty=D("0.5"), sku="SKU-A"),        # not a whole unit
            ReturnLineIn(qty=D(1), order_item_id=999_999),  # not an item of the order
            ReturnLineIn(qty=D(1), sku="NOPE"),             # unknown sku
            ReturnLineIn(qty=D(1), sku="SKU-C"),            # ambiguous sku
            ReturnLineIn(qty=D(1)),                         # no item at all
        ])
    errors = _errors(e)
    assert errors[("lines", 0, "qty")] == f"SKU-B (item {order.items.get(sku='SKU-B').pk}) has not been shipped"
    assert errors[("lines", 1, "qty")] == "must be greater than 0"
    assert errors[("lines", 2, "qty")] == "must be a whole number of units"
    assert errors[("lines", 3, "order_item_id")] == "item 999999 is not a line of this order"
    assert errors[("lines", 4, "sku")] == "sku 'NOPE' is not a line of this order"
    assert errors[("lines", 5, "sku")] == "sku 'SKU-C' is on several lines; give order_item_id"
    assert errors[("lines", 6, "order_item_id")] == "give order_item_id or sku"
    assert not _outbox()


def test_order_not_exported_is_refused(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)], exported=False)
    with pytest.raises(InvalidReturnRequest) as e:
        services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), sku="SKU-A")])
    assert _errors(e) == {("order",): f"order {order.increment_id} has not been exported to the OMS yet"}


def test_unknown_order_raises_order_not_found(db: None) -> None:
    with pytest.raises(services.OrderNotFound, match="'404404' not found"):
        services.request_return(order="404404", lines=[ReturnLineIn(qty=D(1), sku="X")])


def test_empty_request_is_refused(make_order: MakeOrder) -> None:
    order = make_order()
    with pytest.raises(InvalidReturnRequest) as e:
        services.request_return(order=order, lines=[])
    assert list(_errors(e)) == [("lines",)]


def test_store_without_sales_channel_is_refused(make_order: MakeOrder) -> None:
    from mcom.commerce import config

    order = make_order([("SKU-A", 1, 1)])
    config.unset("mcom/general/sales_channel_id", scope="store", scope_code="main")
    with pytest.raises(InvalidReturnRequest, match="no sales channel id"):
        services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), sku="SKU-A")])


def test_disabled_module_refuses_returns(make_order: MakeOrder, env: object) -> None:
    order = make_order([("SKU-A", 1, 1)])
    env(modules="sales,catalog,inventory")  # type: ignore[operator]
    with pytest.raises(services.ReturnsDisabled):
        services.request_return(order=order, lines=[ReturnLineIn(qty=D(1), sku="SKU-A")])
    assert Order.objects.get(pk=order.pk).rmas.count() == 0
