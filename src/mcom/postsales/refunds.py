"""Refunds from the OMS (``refund_management.updated``, oms-protocol.md §8.9) → credit memos.

Status semantics: ``RELEASED`` issues the credit memo (the money went back); ``PENDINGRELEASE``
and every other code are recorded in :class:`~mcom.postsales.models.OmsRefund` only, until a
``RELEASED`` message for the same refund arrives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from mcom.commerce.models import (
    CreditMemo,
    CreditMemoItem,
    Order,
    OrderItem,
    OrderStatusHistory,
    Rma,
)
from mcom.postsales import mappers
from mcom.postsales.lines import LineRef, LinesUnavailable, OrderLines, order_lines
from mcom.postsales.messages import RefundLine, RefundUpdate
from mcom.postsales.models import OmsRefund
from mcom.service_bus.errors import InvalidPayload, RetryLater

log = logging.getLogger("mcom.postsales")

ZERO = Decimal("0")
ONE = Decimal("1")
STATUS_CLOSED = "closed"


@dataclass
class _ItemRefund:
    """What one order item gets back: the sum of its refunded wire lines (units)."""

    item: OrderItem
    qty: Decimal = ZERO
    parts: list[mappers.LineAmounts] = field(default_factory=list)

    @property
    def amounts(self) -> mappers.LineAmounts:
        return mappers.LineAmounts(
            net=sum((p.net for p in self.parts), ZERO), tax=sum((p.tax for p in self.parts), ZERO),
            gross=sum((p.gross for p in self.parts), ZERO),
            tax_percent=next((p.tax_percent for p in self.parts if p.tax_percent), ZERO),
        )


def _line_ref(lines: OrderLines, index: int, line: RefundLine) -> LineRef | None:
    """The order line a refund line names; None for the shipping line. Raises InvalidPayload."""
    if lines.is_shipping(line.order_item_id, line.order_line):
        return None
    ref = lines.resolve(line.order_item_id, line.order_line)
    if ref is None:
        raise InvalidPayload(
            f"refund.lines[{index}]: order line {line.order_item_id or line.order_line!r} is not a line of the order"
        )
    return ref


def _record(order: Order, rma: Rma | None, update: RefundUpdate, status: str) -> OmsRefund:
    now = timezone.now()
    record, created = OmsRefund.objects.select_for_update().get_or_create(
        order=order,
        rma_number=update.rma[:64],
        credit_note_number=update.credit_note_number[:64],
        defaults={"status": status[:64], "created_at": now, "updated_at": now, "rma": rma,
                  "payload": update.model_dump(mode="json")},
    )
    if not created and record.credit_memo_id is None:
        record.status = status[:64]
    record.rma = record.rma or rma
    record.status_date = update.status.date[:64] if update.status else ""
    record.refund_reason = update.refund_reason[:128]
    record.refund_type = update.refund_type[:64]
    record.payload = update.model_dump(mode="json")
    record.updated_at = now
    record.save()
    return record


def apply_refund(update: RefundUpdate) -> dict[str, Any]:
    """Record a refund and, when it is ``RELEASED``, issue its credit memo.

    The credit memo gets one item per refunded product line (qty, net, tax, gross, rate from
    ``lines[].payments[].details``); the shipping line adds to tax and grand total. The order's
    ``total_refunded`` and the items' ``qty_refunded`` grow by the credit memo; the order is
    closed when the whole grand total is refunded, or every line is refunded (or canceled) and the shipping
    too (:func:`_close_if_refunded`).

    Idempotent: a repeated ``RELEASED`` message (same order + ``credit_note_number``) creates no
    second credit memo. Raises ``RetryLater`` for an unknown order; ``InvalidPayload`` for a
    ``RELEASED`` refund without credit note number or with a line that is not on the order.
    """
    status = mappers.normalize_status(update.status.value if update.status else "", mappers.REFUND_STATUSES)
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(increment_id=update.order_id).first()
        if order is None:
            raise RetryLater(f"order {update.order_id} is not known (yet)")
        rma = Rma.objects.filter(order=order, rma_number=update.rma).first() if update.rma else None
        if status == mappers.REFUND_RELEASED and not update.credit_note_number.strip():
            raise InvalidPayload("refund.credit_note_number is required for a RELEASED refund")
        record = _record(order, rma, update, status)
        outcome: dict[str, Any] = {"order_id": order.increment_id, "rma": update.rma,
                                   "credit_note_number": update.credit_note_number, "status": status}
        if status != mappers.REFUND_RELEASED:
            return {**outcome, "credit_memo": None, "recorded": True}
        existing = CreditMemo.objects.filter(order=order, credit_note_number=update.credit_note_number).first()
        if existing is not None:
            if record.credit_memo_id is None:
                OmsRefund.objects.filter(pk=record.pk).update(credit_memo=existing)
            return {**outcome, "credit_memo": existing.pk, "duplicate": True}
        try:
            with transaction.atomic():
                memo = _issue(order, rma, update)
        except IntegrityError:  # a concurrent delivery of the same refund won the race
            memo = CreditMemo.objects.get(order=order, credit_note_number=update.credit_note_number)
            return {**outcome, "credit_memo": memo.pk, "duplicate": True}
        OmsRefund.objects.filter(pk=record.pk).update(credit_memo=memo)
    log.info("refund applied: credit memo %s for order %s, %s %s", memo.credit_note_number, order.increment_id,
             memo.grand_total, order.currency)
    return {**outcome, "credit_memo": memo.pk, "grand_total": str(memo.grand_total), "duplicate": False}


def _issue(order: Order, rma: Rma | None, update: RefundUpdate) -> CreditMemo:
    try:
        lines = order_lines(order)
    except LinesUnavailable as e:
        raise InvalidPayload(f"order {order.increment_id} has no OMS lines: {e}") from None
    per_item: dict[int, _ItemRefund] = {}
    other: list[mappers.LineAmounts] = []
    for index, line in enumerate(update.lines):
        ref = _line_ref(lines, index, line)
        amounts = mappers.refund_line_amounts(line)
        if ref is None:
            other.append(amounts)
            continue
        item = ref.item
        refund = per_item.setdefault(item.pk, _ItemRefund(item))
        refundable = item.qty_ordered - item.qty_refunded - item.qty_canceled - refund.qty
        refund.qty += mappers.refund_qty(sent=line.quantity, line_qty=ONE, refundable=max(refundable, ZERO))
        refund.parts.append(amounts)
    item_lines = list(per_item.values())
    totals = mappers.credit_memo_totals((i.amounts for i in item_lines), other)
    memo = CreditMemo.objects.create(
        order=order, rma=rma, credit_note_number=update.credit_note_number[:64],
        reason=(update.refund_reason or update.refund_type)[:128], subtotal=totals.subtotal,
        tax_amount=totals.tax_amount, grand_total=totals.grand_total, created_at=timezone.now(),
    )
    CreditMemoItem.objects.bulk_create([
        CreditMemoItem(
            credit_memo=memo, order_item=i.item, qty=i.qty, row_total=i.amounts.net,
            tax_amount=i.amounts.tax, tax_percent=i.amounts.tax_percent, row_total_incl_tax=i.amounts.gross,
        )
        for i in item_lines
    ])
    for i in item_lines:
        OrderItem.objects.filter(pk=i.item.pk).update(qty_refunded=F("qty_refunded") + i.qty)
    Order.objects.filter(pk=order.pk).update(total_refunded=F("total_refunded") + totals.grand_total)
    order.refresh_from_db()
    _close_if_refunded(order, memo, [i.pk for i in lines.items])
    return memo


def refunded_shipping(order: Order) -> Decimal:
    """What the credit memos of ``order`` gave back beyond their item rows (the shipping lines)."""
    items = CreditMemoItem.objects.filter(credit_memo__order=order).aggregate(t=Sum("row_total_incl_tax"))["t"]
    memos = CreditMemo.objects.filter(order=order).aggregate(t=Sum("grand_total"))["t"]
    return max(Decimal(memos or 0) - Decimal(items or 0), ZERO)


def _close_if_refunded(order: Order, memo: CreditMemo, item_ids: list[int]) -> None:
    """Close the order when nothing is left to refund: the grand total is refunded, or every item with
    OMS lines is refunded (or canceled) *and* so is the shipping (``shipping_amount``; nothing to do for
    free shipping). Otherwise the history says what is left."""
    items = list(OrderItem.objects.filter(pk__in=item_ids))
    lines_done = bool(items) and all(i.qty_refunded + i.qty_canceled >= i.qty_ordered for i in items)
    shipping_left = max(Decimal(order.shipping_amount) - refunded_shipping(order), ZERO)
    total_done = order.grand_total > 0 and order.total_refunded >= order.grand_total
    comment = f"Credit memo {memo.credit_note_number} ({memo.grand_total} {order.currency}) refunded by the OMS"
    now = timezone.now()
    if lines_done and shipping_left > 0 and not total_done:
        comment += f"; every item is refunded, shipping ({shipping_left} {order.currency}) is not: the order stays open"
    if (total_done or (lines_done and shipping_left <= 0)) and order.state != Order.STATE_CLOSED:
        order.state = Order.STATE_CLOSED
        order.status = STATUS_CLOSED
        order.updated_at = now
        order.save(update_fields=["state", "status", "updated_at"])
        comment += "; order closed (fully refunded)"
        log.info("order %s closed: fully refunded", order.increment_id)
    OrderStatusHistory.objects.create(
        order=order, status=order.status, comment=comment, source=OrderStatusHistory.SOURCE_OMS, created_at=now
    )
