"""mcom → Oscar: apply what the OMS told mcom (kept in mcom's commerce tables) to Oscar's own models,
through Oscar's order processing pipeline.

mcom's inbound handlers update the mirror order (statuses, shipments with tracking, cancelled
quantities, returns, credit memos) and the stock items; :func:`apply_open_orders` and
:func:`apply_stock` (cron, every pass) carry the changes over:

- shipment → ``EventHandler.handle_shipping_event`` with the "Shipped" ``ShippingEventType``, the
  shipped line quantities and the tracking in the event's notes; the lines' stock allocations are
  consumed; fully shipped lines move to the shipped line status (``Line.set_status``);
- cancelled quantities → a "Cancelled" shipping event for the difference, allocations cancelled,
  fully cancelled lines to the cancelled line status;
- credit memo → ``EventHandler.handle_payment_event`` with the "Refunded" ``PaymentEventType``
  (amount and line quantities);
- return (RMA) status → an ``OrderNote``;
- mcom order state → Oscar status (``EventHandler.handle_order_status_change`` → ``Order.set_status``,
  which follows ``OSCAR_ORDER_STATUS_PIPELINE`` and its cascade);
- stock item of an aggregate → ``StockRecord.num_in_stock`` of the mapped partners (OMS quantity
  plus what Oscar still holds allocated, so Oscar's net stock level is the OMS's).

What Oscar refuses (a status its pipeline does not allow from the current one, a shipping or payment
event its line checks reject) is not forced: the change is left out, an ``OrderNote`` of type
"Error" says what was refused and why, and a warning is logged. Each target status is tried once;
shipments, refunds and notes are recognised by their marker, so a pass never applies one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, IntegerField, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from oscar.apps.order import exceptions as order_errors
from oscar.apps.partner.exceptions import InvalidStockAdjustment
from oscar.core.loading import get_class, get_model

from mcom.commerce.models import CreditMemo, Order, OrderItem, Rma, Shipment, StockItem
from mcom.contrib.oscar import conf
from mcom.contrib.oscar.models import OrderLink, SyncMark

log = logging.getLogger("mcom.contrib.oscar")

STOCK_MARK = "stock"
#: how far the stock high-water mark stays behind the present (late committers are still seen)
STOCK_SETTLE_SECONDS = 10.0
FINAL_STATES = (Order.STATE_CANCELED, Order.STATE_CLOSED)
NOTE_PREFIX = "[mcom]"


@dataclass
class Applied:
    """What one pass did to one Oscar order (returned by the cron job, summed)."""

    shipments: int = 0
    cancellations: int = 0
    refunds: int = 0
    statuses: int = 0
    refused: list[str] = field(default_factory=list)


def _m(app: str, name: str) -> Any:
    return get_model(app, name)


def _qty(value: Decimal) -> int:
    return int(Decimal(value))


class _Apply:
    """Apply one mcom order to its (locked) Oscar order."""

    def __init__(self, oscar: Any, mcom: Order, adapter: conf.AdapterConf) -> None:
        self.oscar = oscar
        self.mcom = mcom
        self.adapter = adapter
        self.handler = get_class("order.processing", "EventHandler")()
        self.items = list(OrderItem.objects.filter(order=mcom).order_by("id"))
        lines = {ln.pk: ln for ln in oscar.lines.select_related("stockrecord").all()}
        self.line_of: dict[int, Any] = {}
        for item in self.items:
            line_id = (item.custom_attributes or {}).get("oscar_line_id")
            if isinstance(line_id, int) and line_id in lines:
                self.line_of[item.pk] = lines[line_id]
        self.notes = set(oscar.notes.filter(message__startswith=NOTE_PREFIX).values_list("message", flat=True))
        self.result = Applied()

    # ------------------------------------------------------------------ reporting

    def note(self, message: str, note_type: str = "Info") -> None:
        text = f"{NOTE_PREFIX} {message}"
        if text not in self.notes:
            self.handler.create_note(self.oscar, text, note_type=note_type)
            self.notes.add(text)

    def refused(self, what: str, error: Exception) -> None:
        reason = str(error) or type(error).__name__
        log.warning("Oscar order %s: %s refused by Oscar: %s", self.oscar.number, what, reason)
        self.note(f"{what} refused by Oscar (not forced): {reason}", note_type="Error")
        self.result.refused.append(f"{self.oscar.number}: {what}: {reason}")

    def _refused_before(self, what: str) -> bool:
        return any(n.startswith(f"{NOTE_PREFIX} {what} refused by Oscar") for n in self.notes)

    # ------------------------------------------------------------------ pieces

    def _event_type(self, model: str, name: str) -> Any:
        kind, _ = _m("order", model).objects.get_or_create(name=name)
        return kind

    def _set_line_status(self, line: Any, status: str) -> None:
        if not status or line.status == status:
            return
        try:
            line.set_status(status)
        except order_errors.InvalidLineStatus as e:
            self.refused(f"line {line.pk} status {status!r}", e)

    def _lines(self, rows: Any) -> tuple[list[Any], list[int]]:
        """Oscar lines and whole quantities of mcom rows with ``order_item_id`` and ``qty``."""
        lines, qtys = [], []
        for row in rows:
            line = self.line_of.get(row.order_item_id)
            if line is not None and _qty(row.qty) > 0:
                lines.append(line)
                qtys.append(_qty(row.qty))
        return lines, qtys

    def shipments(self) -> None:
        kind = self._event_type("ShippingEventType", self.adapter.shipped_event)
        known = set(self.oscar.shipping_events.filter(notes__startswith="mcom shipment ").values_list("notes", flat=True))
        for shipment in Shipment.objects.filter(order=self.mcom).prefetch_related("items", "tracks").order_by("id"):
            marker = f"mcom shipment {shipment.pk}"
            if any(k == marker or k.startswith(marker + ":") for k in known) or self._refused_before(marker):
                continue
            lines, qtys = self._lines(shipment.items.all())
            if not lines:
                continue
            tracking = "; ".join(
                " ".join(x for x in (t.carrier, t.tracking_number, t.tracking_url) if x) for t in shipment.tracks.all())
            notes = f"{marker}: OMS shipment {shipment.oms_shipment_id or '-'}"
            notes += f" from {shipment.source_id}" if shipment.source_id else ""
            notes += f" — tracking {tracking}" if tracking else ""
            try:
                with transaction.atomic():
                    self.handler.handle_shipping_event(self.oscar, kind, lines, qtys, reference=notes)
            except order_errors.InvalidShippingEvent as e:
                self.refused(f"{marker}", e)
                continue
            self.result.shipments += 1
            self._consume(lines, qtys)
            for line in lines:
                if line.shipping_event_quantity(kind) >= line.quantity:
                    self._set_line_status(line, self.adapter.line_shipped)

    def _consume(self, lines: Sequence[Any], qtys: Sequence[int]) -> None:
        for line, qty in zip(lines, qtys, strict=True):
            if line.stockrecord is None or not line.is_allocation_consumption_possible(qty):
                continue
            try:
                line.consume_allocation(qty)
            except InvalidStockAdjustment as e:
                log.info("Oscar order %s line %s: allocation not consumed: %s", self.oscar.number, line.pk, e)

    def cancellations(self) -> None:
        kind = self._event_type("ShippingEventType", self.adapter.cancelled_event)
        lines, qtys = [], []
        for item in self.items:
            line = self.line_of.get(item.pk)
            if line is None:
                continue
            delta = _qty(item.qty_canceled) - line.shipping_event_quantity(kind)
            if delta > 0:
                lines.append(line)
                qtys.append(delta)
        if not lines:
            return
        summary = ", ".join(f"{q} × line {ln.pk}" for ln, q in zip(lines, qtys, strict=True))
        reason = self.mcom.oms_status_reason or "no reason given"
        try:
            with transaction.atomic():
                self.handler.handle_shipping_event(
                    self.oscar, kind, lines, qtys, reference=f"mcom cancellation: {summary} (OMS reason {reason})")
        except order_errors.InvalidShippingEvent as e:
            self.refused(f"cancellation of {summary}", e)
            return
        self.result.cancellations += 1
        self.handler.cancel_stock_allocations(self.oscar, lines, qtys)
        for line in lines:
            if line.shipping_event_quantity(kind) >= line.quantity:
                self._set_line_status(line, self.adapter.line_cancelled)

    def refunds(self) -> None:
        kind = self._event_type("PaymentEventType", self.adapter.refund_event)
        known = set(self.oscar.payment_events.filter(reference__startswith="mcom-credit-memo-")
                    .values_list("reference", flat=True))
        for memo in CreditMemo.objects.filter(order=self.mcom).prefetch_related("items").order_by("id"):
            ref = f"mcom-credit-memo-{memo.pk}"
            if ref in known or self._refused_before(f"refund {memo.credit_note_number}"):
                continue
            lines, qtys = self._lines(memo.items.all())
            try:
                with transaction.atomic():
                    self.handler.handle_payment_event(
                        self.oscar, kind, Decimal(memo.grand_total), lines or None, qtys or None, reference=ref)
            except order_errors.InvalidPaymentEvent as e:
                self.refused(f"refund {memo.credit_note_number}", e)
                continue
            self.result.refunds += 1
            self.note(f"refund {memo.credit_note_number}: {Decimal(memo.grand_total):.2f} {self.oscar.currency} "
                      f"(OMS credit note, payment event {ref})")

    def returns(self) -> None:
        for rma in Rma.objects.filter(order=self.mcom).order_by("id"):
            number = rma.rma_number or rma.request_id
            self.note(f"return {number}: {rma.status}" + (f" — tracking {rma.tracking_number}" if rma.tracking_number else ""))

    def status(self, link: OrderLink) -> None:
        target = self.adapter.order_statuses.get(self.mcom.state, "")
        if not target or target == self.oscar.status or target == link.status_target:
            return
        link.status_target = target
        label = self.mcom.oms_status + (f" ({self.mcom.oms_status_reason})" if self.mcom.oms_status_reason else "")
        try:
            with transaction.atomic():
                self.handler.handle_order_status_change(
                    self.oscar, target, note_msg=f"{NOTE_PREFIX} status {target!r}: mcom order {self.mcom.state}"
                    + (f", OMS status {label}" if label else ""))
        except order_errors.InvalidOrderStatus as e:
            self.refused(f"status {target!r}", e)
            return
        self.result.statuses += 1


def fingerprint_annotations() -> dict[str, Any]:
    """Per mcom order: what, when changed, must be carried over to Oscar (one query for all orders)."""
    def count(model: Any) -> Any:
        return Coalesce(Subquery(model.objects.filter(order=OuterRef("pk")).values("order")
                                 .annotate(n=Count("id")).values("n"), output_field=IntegerField()), 0)

    cancelled = Subquery(OrderItem.objects.filter(order=OuterRef("pk")).values("order")
                         .annotate(s=Sum("qty_canceled")).values("s"))
    rma_changed = Subquery(Rma.objects.filter(order=OuterRef("pk")).values("order")
                           .annotate(m=Max("updated_at")).values("m"))
    return {"fp_shipments": count(Shipment), "fp_memos": count(CreditMemo), "fp_rmas": count(Rma),
            "fp_cancelled": cancelled, "fp_rma_changed": rma_changed}


def fingerprint(order: Any) -> str:
    parts = [order.state, order.status, order.oms_status, order.oms_status_reason, order.fp_shipments,
             order.fp_memos, order.fp_rmas, f"{Decimal(order.fp_cancelled or 0):f}", order.fp_rma_changed or ""]
    return "|".join(str(p) for p in parts)[:255]


def apply_order(link: OrderLink, *, force: bool = False) -> Applied | None:
    """Carry the mcom state of ``link``'s order over to its Oscar order, in one transaction with the
    Oscar order locked. Returns None when nothing changed since the last pass (``force`` ignores that)."""
    OscarOrder = _m("order", "Order")
    adapter = conf.current()
    if link.order_id is None:
        return None
    with transaction.atomic():
        mcom = Order.objects.filter(pk=link.order_id).annotate(**fingerprint_annotations()).first()
        if mcom is None:
            OrderLink.objects.filter(pk=link.pk).update(is_open=False)
            return None
        fp = fingerprint(mcom)
        if fp == link.fingerprint and not force:
            return None
        oscar = OscarOrder.objects.select_for_update().filter(pk=link.oscar_order_id).first()
        if oscar is None:
            OrderLink.objects.filter(pk=link.pk).update(is_open=False, fingerprint=fp)
            return None
        work = _Apply(oscar, mcom, adapter)
        work.shipments()
        work.cancellations()
        work.refunds()
        work.returns()
        work.status(link)
        link.fingerprint = fp
        link.synced_at = timezone.now()
        link.is_open = mcom.state not in FINAL_STATES or bool(work.result.refused)
        link.save(update_fields=["fingerprint", "status_target", "synced_at", "is_open"])
    return work.result


def apply_open_orders(batch: int = 500) -> dict[str, int]:
    """Cron: apply every open linked order whose mcom side changed (all open links, in batches of
    ``batch``; one fingerprint query per batch). One order's failure is logged and does not stop the
    others; it is tried again next pass."""
    total = Applied()
    errors = changed = 0
    last = 0
    while True:
        links = list(OrderLink.objects.filter(is_open=True, order__isnull=False, pk__gt=last).order_by("pk")[:batch])
        if not links:
            break
        last = links[-1].pk
        fps = {o.pk: fingerprint(o) for o in Order.objects.filter(pk__in=[ln.order_id for ln in links])
               .annotate(**fingerprint_annotations())}
        for link in links:
            if fps.get(link.order_id or 0) == link.fingerprint:
                continue
            try:
                result = apply_order(link)
            except Exception:  # noqa: BLE001 - one order must not stop the others; retried next pass
                log.exception("Oscar order %s: applying the mcom state failed", link.number)
                errors += 1
                continue
            if result is None:
                continue
            changed += 1
            total.shipments += result.shipments
            total.cancellations += result.cancellations
            total.refunds += result.refunds
            total.statuses += result.statuses
            total.refused += result.refused
    return {"orders": changed, "shipments": total.shipments, "cancellations": total.cancellations,
            "refunds": total.refunds, "statuses": total.statuses, "refused": len(total.refused), "errors": errors}


# ------------------------------------------------------------------------------------- stock


def _apply_stock_rows(rows: Sequence[tuple[int, str, int]], adapter: conf.AdapterConf) -> int:
    """``(oscar product id, aggregate code, OMS quantity)`` rows → the mapped stock records; returns
    how many changed."""
    StockRecord = _m("partner", "StockRecord")
    by_product: dict[int, list[tuple[str, int]]] = {}
    for product_id, aggregate, qty in rows:
        by_product.setdefault(product_id, []).append((aggregate, qty))
    changed = 0
    now = timezone.now()
    for record in StockRecord.objects.filter(product_id__in=list(by_product)).select_related("partner"):
        for aggregate, qty in by_product[record.product_id]:
            partners = adapter.partners_for(aggregate)
            if partners is not None and record.partner.code not in partners:
                continue
            wanted = max(qty, 0) + max(record.num_allocated or 0, 0)
            if record.num_in_stock != wanted:
                # a plain UPDATE: a stock record saved through the model would re-mirror the product
                StockRecord.objects.filter(pk=record.pk).update(num_in_stock=wanted, date_updated=now)
                record.num_in_stock = wanted
                changed += 1
    return changed


def apply_stock(batch: int = 1000) -> int:
    """Cron: set ``StockRecord.num_in_stock`` from the stock items changed since the last pass.

    An item's aggregate names the partners (``MCOM_OSCAR["aggregates"]``, all when unset); the Oscar
    product is the one the mcom product mirrors (``custom_attributes.oscar_product_id``). Items are
    read in batches, their stock records with one query per batch. The high-water mark stays
    :data:`STOCK_SETTLE_SECONDS` behind the present, so an item written by a transaction that
    commits a little later is still seen. Returns the number of stock records changed. Idempotent.
    """
    adapter = conf.current()
    settled = timezone.now() - timedelta(seconds=STOCK_SETTLE_SECONDS)
    with transaction.atomic():
        mark, _ = SyncMark.objects.select_for_update().get_or_create(name=STOCK_MARK)
        qs = StockItem.objects.order_by("updated_at", "id")
        if mark.at is not None:
            qs = qs.filter(updated_at__gt=mark.at)
        rows = qs.values_list("updated_at", "product__custom_attributes", "aggregate__code", "qty")
        changed = 0
        newest = mark.at
        chunk: list[tuple[int, str, int]] = []
        for updated_at, attributes, aggregate, qty in rows.iterator(chunk_size=batch):
            if updated_at <= settled and (newest is None or updated_at > newest):
                newest = updated_at
            product_id = (attributes or {}).get("oscar_product_id")
            if isinstance(product_id, int):
                chunk.append((product_id, aggregate, _qty(qty)))
            if len(chunk) >= batch:
                changed += _apply_stock_rows(chunk, adapter)
                chunk = []
        if chunk:
            changed += _apply_stock_rows(chunk, adapter)
        if newest != mark.at:
            SyncMark.objects.filter(pk=mark.pk).update(at=newest)
    return changed
