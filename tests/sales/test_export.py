"""Export rules on the real database (no network): eligibility, skipped stores, idempotent queueing,
plugin failures, retry schedule, the status guard."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from tests.sales.conftest import CHANNEL, PlaceOrder

from mcom.commerce import config
from mcom.commerce.hooks import ChangeRefused
from mcom.commerce.models import Order, OrderItem, OrderStatusHistory
from mcom.commerce.services import change_order_status
from mcom.sales import export, jobs
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage


def creates(order: Order) -> list[LoggedMessage]:
    return list(LoggedMessage.objects.filter(direction="out", topic=methods.ORDER_CREATE,
                                             entity_key=f"order:{order.increment_id}").order_by("id"))


def test_authorized_pending_order_is_queued_with_its_mapped_payload(place: PlaceOrder) -> None:
    order = place()
    assert order.oms_export_state == Order.EXPORT_NOT_EXPORTED
    summary = jobs.export_orders()
    assert summary["queued"] == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_QUEUED
    assert order.oms_export_error == ""
    [msg] = creates(order)
    assert msg.kind == LoggedMessage.KIND_DELEGATE
    assert msg.status == LoggedMessage.NEW
    params = json.loads(msg.payload)["order"]
    assert params["id"] == order.increment_id
    assert params["store"] == CHANNEL
    assert [ln["id"] for ln in params["lines"]][-1] == "SHIPPING"
    assert len(params["lines"]) == 4  # 2 × SKU-A, 1 × SKU-B, shipping


def test_queueing_twice_never_enqueues_a_second_create(place: PlaceOrder) -> None:
    order = place()
    jobs.export_orders()
    Order.objects.filter(pk=order.pk).update(oms_export_state=Order.EXPORT_FAILED)  # as if a hook had raced
    result = export.queue_orders(due_only=False)
    assert result.already == [order.increment_id]
    assert result.queued == []
    assert len(creates(order)) == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_QUEUED


def test_unauthorized_or_other_status_waits_until_it_becomes_eligible(place: PlaceOrder) -> None:
    unpaid = place(payment_authorized=False)
    processing = place(status="processing")
    assert jobs.export_orders()["queued"] == 0
    Order.objects.filter(pk=unpaid.pk).update(payment_authorized=True)
    assert jobs.export_orders()["queued"] == 1
    config.set_value("mcom/orders/export_statuses", "pending,processing", scope="store", scope_code="main")
    assert jobs.export_orders()["queued"] == 1
    processing.refresh_from_db()
    assert processing.oms_export_state == Order.EXPORT_QUEUED


def test_store_without_sales_channel_is_skipped_with_the_reason_then_exported(place: PlaceOrder) -> None:
    config.unset("mcom/general/sales_channel_id", scope="store", scope_code="main")
    order = place()
    summary = jobs.export_orders()
    assert summary["queued"] == 0
    assert summary["skipped"] == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_SKIPPED
    assert order.oms_export_error == ("store main has no sales channel id (mcom/general/sales_channel_id); "
                                      "not exported")
    assert creates(order) == []
    config.set_value("mcom/general/sales_channel_id", "late-channel")  # default scope this time
    assert jobs.export_orders()["queued"] == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_QUEUED
    assert order.oms_export_error == ""
    assert json.loads(creates(order)[0].payload)["order"]["store"] == "late-channel"


def test_failing_plugin_marks_the_order_failed_and_cron_retries_later(place: PlaceOrder, env: Any) -> None:
    env(plugins=["tests.sales.sample_plugins:Broken"])
    order = place()
    summary = jobs.export_orders()
    assert summary["failed"] == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_FAILED
    assert order.oms_export_attempts == 1
    assert "plugin 'tests.sales.sample_plugins:Broken' failed: KeyError" in order.oms_export_error
    assert order.oms_next_attempt_at is not None
    assert order.oms_next_attempt_at > timezone.now()
    assert creates(order) == []
    assert jobs.export_orders() == {"queued": 0, "already": 0, "failed": 0, "skipped": 0}  # not due yet
    env(plugins=[])  # the plugin is fixed
    Order.objects.filter(pk=order.pk).update(oms_next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert jobs.export_orders()["queued"] == 1
    assert len(creates(order)) == 1


def test_fractional_quantity_fails_with_the_reason(place: PlaceOrder) -> None:
    order = place(lines=[("SKU-A", "1")])
    # placing refuses a fractional quantity of a unit product now; an order stored before still fails alone
    OrderItem.objects.filter(order=order, sku="SKU-A").update(qty_ordered=Decimal("1.5"))
    jobs.export_orders()
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_FAILED
    assert "has quantity 1.5; OMS lines are whole units" in order.oms_export_error


def test_hooks_set_exported_or_failed(place: PlaceOrder) -> None:
    order = place()
    jobs.export_orders()
    params = json.loads(creates(order)[0].payload)
    export.export_failed(params, "OmsUnavailable: HTTP 503", True)
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_QUEUED
    assert order.oms_export_error == "send failed, retrying: OmsUnavailable: HTTP 503"
    export.export_sent(params, {"order_id": order.increment_id})
    export.export_sent(params, {"order_id": order.increment_id})  # idempotent
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_EXPORTED
    assert order.oms_exported_at is not None
    assert order.oms_export_attempts == 2
    assert order.oms_export_error == ""
    assert OrderStatusHistory.objects.filter(order=order, comment="Exported to the OMS").count() == 1
    export.export_failed(params, "late failure", False)  # never downgrades an exported order
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_EXPORTED


def test_batch_hook_exports_many_orders_once_each(place: PlaceOrder) -> None:
    first, second, third = place(), place(), place()
    jobs.export_orders()
    params = {o.pk: json.loads(creates(o)[0].payload) for o in (first, second, third)}
    export.export_failed(params[second.pk], "OmsUnavailable: HTTP 503", True)
    export.export_sent(params[third.pk], {"order_id": third.increment_id})  # already exported: left as is
    export.export_sent_many([
        (params[first.pk], {"order_id": first.increment_id, "duplicate": False}),
        (params[second.pk], {"order_id": second.increment_id, "duplicate": True}),
        (params[second.pk], {"order_id": second.increment_id, "duplicate": True}),  # twice in one batch
        (params[third.pk], {"order_id": third.increment_id}),
        ({"order": {}}, None),  # no order id: ignored
    ])
    export.export_sent_many([(params[first.pk], {"order_id": first.increment_id})])  # idempotent
    for order in (first, second, third):
        order.refresh_from_db()
        assert order.oms_export_state == Order.EXPORT_EXPORTED
        assert order.oms_export_error == ""
    assert (first.oms_export_attempts, second.oms_export_attempts, third.oms_export_attempts) == (1, 2, 1)
    comments = list(OrderStatusHistory.objects.filter(comment__startswith="Exported to the OMS")
                    .order_by("order_id").values_list("order_id", "comment", "status"))
    assert comments == [
        (first.pk, "Exported to the OMS", first.status),
        (second.pk, "Exported to the OMS (the OMS already had it)", second.status),
        (third.pk, "Exported to the OMS", third.status),
    ]


def test_batch_hook_takes_two_statements_per_group_and_one_for_a_repeat(
        place: PlaceOrder, django_assert_num_queries: Any) -> None:
    orders = [place() for _ in range(3)]
    jobs.export_orders()
    sent = [(json.loads(creates(o)[0].payload), {"order_id": o.increment_id}) for o in orders]
    with django_assert_num_queries(2):  # UPDATE … RETURNING (locks and marks), one INSERT of the history rows
        export.export_sent_many(sent)
    with django_assert_num_queries(1):  # already exported: the UPDATE matches nothing, no history row
        export.export_sent_many(sent)
    assert OrderStatusHistory.objects.filter(comment="Exported to the OMS").count() == 3


def test_given_up_send_is_superseded_by_a_new_create(place: PlaceOrder) -> None:
    order = place()
    jobs.export_orders()
    [first] = creates(order)
    LoggedMessage.objects.filter(pk=first.pk).update(status=LoggedMessage.ERROR)
    export.export_failed(json.loads(first.payload), "OmsRejected: HTTP 400", False)
    Order.objects.filter(pk=order.pk).update(oms_next_attempt_at=timezone.now())
    assert jobs.export_orders()["queued"] == 1
    old, new = creates(order)
    assert old.status == LoggedMessage.IGNORED
    assert new.status == LoggedMessage.NEW


@pytest.mark.parametrize(("state", "message"), [
    (Order.EXPORT_EXPORTED, "Order {} was exported to the OMS; its status is managed by the OMS"),
    (Order.EXPORT_QUEUED, "Order {} is being exported to the OMS; its status is managed by the OMS"),
])
def test_local_status_change_of_exported_order_is_refused(place: PlaceOrder, state: str, message: str) -> None:
    order = place()
    Order.objects.filter(pk=order.pk).update(oms_export_state=state)
    order.refresh_from_db()
    with pytest.raises(ChangeRefused) as info:
        change_order_status(order, "canceled")
    assert str(info.value) == message.format(order.increment_id)
    order.refresh_from_db()
    assert order.status == "pending"


def test_local_status_change_before_export_is_allowed(place: PlaceOrder) -> None:
    order = place()
    change_order_status(order, "holded")
    order.refresh_from_db()
    assert order.status == "holded"
