"""Post-sales use cases on the store side: request a return (RMA) and follow what the OMS says about it.

- :func:`request_return` — the storefront/admin asks for a return; validated, saved and queued
  (``return_management.authorize``) in one transaction.
- :func:`apply_return_update` — ``return_management.updated`` from the OMS: RMA number, status,
  line statuses, tracking and label.
- :func:`authorize_sent` / :func:`authorize_failed` — outbound hooks of the authorize message.

Refunds (``refund_management.updated`` → credit memo) are in :mod:`mcom.postsales.refunds`.
Quantities: the OMS knows one line per unit (:mod:`mcom.postsales.lines`); a returned quantity of
*n* is *n* wire lines, recorded as :class:`~mcom.postsales.models.RmaLine` rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from mcom import envconfig
from mcom.commerce import config
from mcom.commerce.models import Order, OrderItem, Rma, RmaItem, ShipmentItem
from mcom.postsales import mappers
from mcom.postsales.lines import LineRef, LinesUnavailable, OrderLines, order_lines
from mcom.postsales.messages import REQUEST_ID_ATTRIBUTE, ReturnUpdate
from mcom.postsales.models import RmaLine
from mcom.service_bus import methods, outbox
from mcom.service_bus.errors import InvalidPayload, RetryLater
from mcom.service_bus.registry import OutboundMessage

log = logging.getLogger("mcom.postsales")

Loc = tuple[str | int, ...]
ZERO = Decimal("0")
ONE = Decimal("1")
MODULE = "postsales"
#: local status of an RMA whose authorize message the OMS refused for good (its quantity is free again)
STATUS_FAILED = "failed"
#: statuses in which a return line counts as returned (``qty_returned``)
_APPROVED = frozenset({mappers.RETURN_APPROVED, "RECEIVED", "CLOSED", "COMPLETE", "COMPLETED", "REFUNDED"})


# --------------------------------------------------------------------------- errors


class ReturnError(Exception):
    """Base class of the errors :func:`request_return` raises; ``str()`` is one line."""


class OrderNotFound(ReturnError):
    """No order with that increment id."""


class ReturnsDisabled(ReturnError):
    """The postsales module is switched off in ``env.toml``."""


class InvalidReturnRequest(ReturnError):
    """The request breaks a rule. ``errors`` lists ``(loc, msg)``; ``loc`` mirrors the request:
    ``("lines", 0, "qty")`` for a line field, ``("order",)`` for the order as a whole."""

    def __init__(self, errors: Sequence[tuple[Loc, str]]) -> None:
        self.errors: list[tuple[Loc, str]] = list(errors)
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.errors))


# --------------------------------------------------------------------------- holding rules


def _void(status: str) -> bool:
    return status == STATUS_FAILED or mappers.is_void(status)


def held_qty(item: OrderItem) -> Decimal:
    """Quantity of ``item`` held by returns: every RMA line except void ones (RMA or line rejected,
    cancelled, or its authorize refused)."""
    total = ZERO
    for row in RmaItem.objects.filter(order_item=item).select_related("rma"):
        if not (_void(row.rma.status) or _void(row.status)):
            total += row.qty
    return total


def _held_line_ids(order: Order) -> set[str]:
    """Wire lines already covered by a non-void return of ``order``."""
    rows = RmaLine.objects.filter(rma__order=order).select_related("rma")
    return {r.line_id for r in rows if not (_void(r.rma.status) or _void(r.status))}


def returnable_qty(item: OrderItem) -> Decimal:
    """Shipped quantity not yet returned or requested for return."""
    return max(ZERO, item.qty_shipped - held_qty(item))


# --------------------------------------------------------------------------- request a return


@dataclass(frozen=True)
class ReturnLineIn:
    """One line of a return request: the order item (by commerce item id, or by sku when only one
    item has it) and the quantity; reason and condition are passed to the OMS verbatim."""

    qty: Decimal
    order_item_id: int | None = None
    sku: str | None = None
    reason: str = ""
    reason_description: str = ""
    condition: str = ""
    condition_description: str = ""


@dataclass
class _Checked:
    item: OrderItem
    line: ReturnLineIn
    units: list[LineRef]


@dataclass
class _Validation:
    errors: list[tuple[Loc, str]] = field(default_factory=list)
    checked: list[_Checked] = field(default_factory=list)

    def fail(self, loc: Loc, msg: str) -> None:
        self.errors.append((loc, msg))


def _n(value: Decimal) -> str:
    """A quantity for messages: ``2`` rather than ``2.0000``."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _resolve(lines: OrderLines, index: int, line: ReturnLineIn, v: _Validation) -> OrderItem | None:
    if line.order_item_id is not None:
        item = lines.item(line.order_item_id)
        if item is None:
            v.fail(("lines", index, "order_item_id"), f"item {line.order_item_id} is not a line of this order")
        return item
    if line.sku:
        found = lines.items_with_sku(line.sku)
        if len(found) == 1:
            return found[0]
        v.fail(("lines", index, "sku"), f"sku {line.sku!r} is on several lines; give order_item_id" if found
               else f"sku {line.sku!r} is not a line of this order")
        return None
    v.fail(("lines", index, "order_item_id"), "give order_item_id or sku")
    return None


def _validate(order: Order, lines: Sequence[ReturnLineIn]) -> _Validation:
    v = _Validation()
    if not order.is_exported:
        v.fail(("order",), f"order {order.increment_id} has not been exported to the OMS yet")
        return v
    if not lines:
        v.fail(("lines",), "a return needs at least one line")
        return v
    try:
        refs = order_lines(order)
    except LinesUnavailable as e:
        v.fail(("order",), str(e))
        return v
    held_lines = _held_line_ids(order)
    asked: dict[int, Decimal] = defaultdict(Decimal)
    for index, line in enumerate(lines):
        item = _resolve(refs, index, line, v)
        if line.qty <= 0:
            v.fail(("lines", index, "qty"), "must be greater than 0")
            continue
        if line.qty != line.qty.to_integral_value():
            v.fail(("lines", index, "qty"), "must be a whole number of units")
            continue
        if item is None:
            continue
        if item.qty_shipped <= 0:
            v.fail(("lines", index, "qty"), f"{item.sku} (item {item.pk}) has not been shipped")
            continue
        held = held_qty(item) + asked[item.pk]
        free = item.qty_shipped - held
        units = [u for u in refs.units_of(item.pk) if u.id not in held_lines][int(asked[item.pk]):]
        if line.qty > free or line.qty > len(units):
            v.fail(
                ("lines", index, "qty"),
                f"{_n(line.qty)} is more than the {_n(max(min(free, Decimal(len(units))), ZERO))} returnable "
                f"of {item.sku} (shipped {_n(item.qty_shipped)}, already returned or requested {_n(held)})",
            )
            continue
        asked[item.pk] += line.qty
        v.checked.append(_Checked(item=item, line=line, units=units[: int(line.qty)]))
    return v


def _source_id(items: Iterable[OrderItem]) -> str:
    """The source that shipped the first returned item (latest shipment), or empty."""
    for item in items:
        found = (
            ShipmentItem.objects.filter(order_item=item)
            .exclude(shipment__source_id="")
            .order_by("-shipment_id")
            .values_list("shipment__source_id", flat=True)
            .first()
        )
        if found:
            return found
    return ""


def order_entity_key(increment_id: str) -> str:
    """The message-log key of an order: its returns are ordered with its other messages."""
    return f"order:{increment_id}"


def request_return(
    *,
    order: Order | str,
    lines: Sequence[ReturnLineIn],
    reason: str = "",
    user: str = "",
    custom_attributes: Mapping[str, str] | None = None,
) -> Rma:
    """Request a return of shipped lines of an exported order (``order``: model or increment id).

    Creates an :class:`~mcom.commerce.models.Rma` (status ``pending``, a new ``request_id``) with its
    items and wire lines and, in the same transaction, queues
    ``magento.postsales.return_management.authorize`` under the order's entity key
    (``order:<increment id>``), so it goes out after the order's earlier messages. A line's
    ``reason`` defaults to the request's ``reason``; ``user`` is sent as the requesting user.

    Rules: the order is exported and its store has a sales channel id; every line names an item of
    the order; ``qty`` is a whole number > 0 and ``≤ shipped − already returned or requested``
    (void returns do not count; lines of one request add up). Not idempotent: each call creates a
    new RMA.

    Raises :class:`OrderNotFound`, :class:`ReturnsDisabled`, :class:`InvalidReturnRequest` (every
    problem, with its location).
    """
    if not envconfig.current().module_enabled(MODULE):
        raise ReturnsDisabled("the postsales module is disabled (env.toml modules)")
    increment_id = order if isinstance(order, str) else order.increment_id
    with transaction.atomic():
        # Lock the order: concurrent requests must see each other's quantities.
        locked = Order.objects.select_for_update().filter(increment_id=increment_id).first()
        if locked is None:
            raise OrderNotFound(f"order {increment_id!r} not found")
        v = _validate(locked, lines)
        channel = "" if v.errors else str(config.get("mcom/general/sales_channel_id", locked.store) or "")
        if not v.errors and not channel:
            v.fail(("order",), f"store {locked.store.code} has no sales channel id (mcom/general/sales_channel_id)")
        if v.errors:
            raise InvalidReturnRequest(v.errors)
        rma = _save(locked, v.checked, reason)
        message = mappers.authorize_message(
            order_id=locked.increment_id,
            sales_channel_id=channel,
            source_id=_source_id(c.item for c in v.checked),
            user=user,
            request_id=rma.request_id,
            lines=[
                mappers.ReturnedLine(
                    line_id=u.id, line_number=u.line_number, sku=u.sku, qty=ONE,
                    reason=c.line.reason or reason, reason_description=c.line.reason_description,
                    condition=c.line.condition, condition_description=c.line.condition_description,
                )
                for c in v.checked
                for u in c.units
            ],
            extra_attributes=sorted((custom_attributes or {}).items()),
        )
        outbox.enqueue(methods.RETURN_AUTHORIZE, message.to_params(), entity_key=order_entity_key(locked.increment_id))
    n = len(v.checked)
    log.info("return %s requested for order %s (%d line%s)", rma.request_id, locked.increment_id, n, "" if n == 1 else "s")
    return rma


def _save(order: Order, checked: Sequence[_Checked], reason: str) -> Rma:
    now = timezone.now()
    rma = Rma.objects.create(
        order=order, request_id=uuid.uuid4().hex, status=Rma.STATUS_PENDING, reason=reason[:255],
        created_at=now, updated_at=now,
    )
    for c in checked:
        item = RmaItem.objects.create(
            rma=rma, order_item=c.item, qty=c.line.qty, reason=(c.line.reason or reason)[:255],
            condition=c.line.condition[:64],
        )
        RmaLine.objects.bulk_create([
            RmaLine(rma=rma, rma_item=item, line_id=u.id, line_number=u.line_number, qty=ONE) for u in c.units
        ])
    return rma


# --------------------------------------------------------------------------- outbound hooks


def _request_id_of(params: Mapping[str, Any]) -> str | None:
    ret = params.get("return")
    attrs = ret.get("custom_attributes") if isinstance(ret, Mapping) else None
    for a in attrs if isinstance(attrs, list) else []:
        if isinstance(a, Mapping) and REQUEST_ID_ATTRIBUTE in (a.get("attribute_code"), a.get("name")):
            return str(a.get("value"))
    return None


def authorize_sent(message: OutboundMessage, result: Any) -> None:
    """The OMS accepted our authorize. When its answer names the RMA (the sandbox and mom-mock
    answer ``{"rma": …, "status": "REQUESTED"}``), record number and status unless an update from
    the OMS got there first. Idempotent."""
    request_id = _request_id_of(message.params)
    if request_id is None or not isinstance(result, Mapping):
        return
    number = str(result.get("rma") or "").strip()[:64]
    status = mappers.normalize_status(str(result.get("status") or ""), mappers.RETURN_STATUSES)[:64]
    with transaction.atomic():
        rma = Rma.objects.select_for_update().filter(request_id=request_id).first()
        if rma is None:
            return
        changed = []
        if number and not rma.rma_number and not Rma.objects.filter(rma_number=number).exists():
            rma.rma_number = number
            changed.append("rma_number")
        if status and rma.status == Rma.STATUS_PENDING:
            rma.status = status
            changed.append("status")
        if changed:
            rma.updated_at = timezone.now()
            rma.save(update_fields=[*changed, "updated_at"])


def authorize_failed(message: OutboundMessage, error: str, will_retry: bool) -> None:
    """A permanently refused authorize marks its still-pending RMA ``failed`` (its quantity is free
    again); a failure that will be retried changes nothing."""
    if will_retry:
        return
    request_id = _request_id_of(message.params)
    if request_id is None:
        return
    updated = Rma.objects.filter(request_id=request_id, status=Rma.STATUS_PENDING).update(
        status=STATUS_FAILED, updated_at=timezone.now()
    )
    if updated:
        log.warning("return %s: the OMS refused the authorize request: %s", request_id, error)


# --------------------------------------------------------------------------- return updated (§8.8)


def _wire_ids(update: ReturnUpdate, lines: OrderLines) -> set[str]:
    out = set()
    for ln in update.lines:
        ref = lines.resolve(ln.id, ln.line_number)
        out.add(ref.id if ref is not None else ln.id)
    return out


def _match_rma(order: Order, update: ReturnUpdate, lines: OrderLines) -> tuple[Rma | None, str]:
    """Our RMA for an update: by RMA number, else by our request id, else the oldest RMA of the
    order without a number whose wire lines are exactly the update's lines."""
    if update.rma:
        found = Rma.objects.select_for_update().filter(rma_number=update.rma).first()
        if found is not None:
            if found.order_id != order.pk:
                raise InvalidPayload(f"RMA {update.rma} belongs to another order than {order.increment_id}")
            return found, "rma"
    if update.request_id:
        found = Rma.objects.select_for_update().filter(request_id=update.request_id, order=order).first()
        if found is not None:
            return found, "request_id"
    wanted = _wire_ids(update, lines)
    if wanted:
        for candidate in Rma.objects.select_for_update().filter(order=order, rma_number__isnull=True).order_by("id"):
            if set(candidate.oms_lines.values_list("line_id", flat=True)) == wanted:
                return candidate, "lines"
    return None, ""


def _create_from_oms(order: Order, update: ReturnUpdate, lines: OrderLines) -> Rma:
    """An RMA the OMS created on its own (e.g. by customer service): mirror it locally."""
    now = timezone.now()
    rma = Rma.objects.create(
        order=order, request_id=f"oms:{update.rma}"[:64], rma_number=update.rma[:64], status=Rma.STATUS_PENDING,
        reason=(update.lines[0].reason if update.lines else "")[:255], created_at=now, updated_at=now,
    )
    units: dict[int, list[tuple[LineRef, Decimal]]] = defaultdict(list)
    for ln in update.lines:
        ref = lines.resolve(ln.id, ln.line_number)
        if ref is not None:
            units[ref.item.pk].append((ref, ln.quantity or ONE))
    for pairs in units.values():
        item = RmaItem.objects.create(rma=rma, order_item=pairs[0][0].item, qty=sum((q for _, q in pairs), ZERO))
        RmaLine.objects.bulk_create([
            RmaLine(rma=rma, rma_item=item, line_id=ref.id, line_number=ref.line_number, qty=q) for ref, q in pairs
        ])
    return rma


def apply_return_update(update: ReturnUpdate) -> dict[str, Any]:
    """Apply ``return_management.updated`` to the local RMA.

    The RMA is matched by RMA number, by our request id (custom attribute ``mcom_request_id``) or by
    the order + wire lines of an RMA without a number yet — so an update that overtakes our own
    authorize call (the OMS answers before the call returns, §10) is matched too. An RMA the OMS
    names but we do not know is created. Sets the RMA number, the status (known codes upper-cased,
    unknown ones verbatim), line statuses, tracking and label (non-empty values only), and
    recomputes the items' ``qty_returned`` (quantities in an approved-or-later status). Idempotent.

    Raises ``RetryLater`` for an unknown order; ``InvalidPayload`` when the update names no RMA and
    matches none of ours, or names an RMA of another order.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(increment_id=update.order_id).first()
        if order is None:
            raise RetryLater(f"order {update.order_id} is not known (yet)")
        try:
            lines = order_lines(order)
        except LinesUnavailable as e:
            raise InvalidPayload(f"order {order.increment_id} has no OMS lines: {e}") from None
        rma, how = _match_rma(order, update, lines)
        if rma is None:
            if not update.rma:
                raise InvalidPayload(f"return update of order {order.increment_id} names no RMA and matches none")
            rma, how = _create_from_oms(order, update, lines), "created"
        _apply(rma, update, lines)
        _recompute_returned(order)
    log.info("return %s of order %s: status %s applied (%s)", rma.rma_number or rma.request_id, order.increment_id,
             rma.status or "?", how)
    return {"rma": rma.rma_number, "request_id": rma.request_id, "status": rma.status, "matched_by": how}


def _apply(rma: Rma, update: ReturnUpdate, lines: OrderLines) -> None:
    if update.rma and rma.rma_number != update.rma:
        if Rma.objects.filter(rma_number=update.rma).exclude(pk=rma.pk).exists():
            raise InvalidPayload(f"RMA number {update.rma} is already used by another return")
        rma.rma_number = update.rma[:64]
    status = mappers.normalize_status(update.status.value, mappers.RETURN_STATUSES)[:64] if update.status else ""
    if status:
        rma.status = status
    for attr, value, limit in (
        ("tracking_carrier", update.return_tracking_carrier, 64),
        ("tracking_number", update.return_tracking_number, 128),
        ("tracking_url", update.return_tracking_url, 512),
        ("label_url", update.return_tracking_label_url, 512),
    ):
        if value.strip():
            setattr(rma, attr, value.strip()[:limit])
    rma.updated_at = timezone.now()
    rma.save()
    by_wire = {line.line_id: line for line in rma.oms_lines.all()}
    for ln in update.lines:
        ref = lines.resolve(ln.id, ln.line_number)
        row = by_wire.get(ref.id if ref is not None else ln.id)
        line_status = mappers.normalize_status(ln.status.value, mappers.RETURN_STATUSES)[:64] if ln.status else ""
        if row is not None and (line_status or status) and row.status != (line_status or status):
            row.status = line_status or status
            row.save(update_fields=["status"])
    for item in rma.items.all():
        statuses = sorted({r.status for r in item.oms_lines.all() if r.status} or ({status} if status else set()))
        summary = ",".join(statuses)[:64]
        if summary and item.status != summary:
            item.status = summary
            item.save(update_fields=["status"])


def _recompute_returned(order: Order) -> None:
    """``qty_returned`` of each item = quantity of its return lines in an approved-or-later status
    (the line's own status, else its RMA's), never more than shipped."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for item in RmaItem.objects.filter(rma__order=order).select_related("rma").prefetch_related("oms_lines"):
        if _void(item.rma.status):
            continue
        wire = list(item.oms_lines.all())
        if wire:
            totals[item.order_item_id] += sum(
                (w.qty for w in wire if (w.status or item.rma.status).upper() in _APPROVED), ZERO
            )
        elif (item.status or item.rma.status).upper() in _APPROVED:
            totals[item.order_item_id] += item.qty
    for oi in OrderItem.objects.filter(order=order):
        qty = min(totals[oi.pk], max(oi.qty_shipped, ZERO)) if oi.qty_shipped else totals[oi.pk]
        if oi.qty_returned != qty:
            OrderItem.objects.filter(pk=oi.pk).update(qty_returned=qty)


def returns_of(order: Order) -> list[Rma]:
    """The order's RMAs, newest first, with their items (for the REST API and the admin)."""
    return list(Rma.objects.filter(order=order).prefetch_related("items__order_item").order_by("-created_at", "-id"))
