"""Order lifecycle after export: the local status guard and what the OMS tells about an order
(updates, creation notices, shipments, shipping-detail and shipment requests).

Export itself is :mod:`mcom.sales.export`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from mcom import orderlines
from mcom.commerce.hooks import ChangeRefused
from mcom.commerce.models import (
    Order,
    OrderItem,
    OrderStatusHistory,
    Product,
    Shipment,
    ShipmentItem,
    ShipmentTrack,
)
from mcom.sales import mappers
from mcom.sales.export import ZERO, module_enabled
from mcom.sales.mappers import SERVICE_TYPES, MappingError
from mcom.sales.messages import (
    OrderUpdate,
    ShipmentDone,
    ShipmentRequest,
    ShippingDetailsRequest,
)
from mcom.service_bus.errors import InvalidPayload, PermanentError, RetryLater

log = logging.getLogger("mcom.sales")


def guard_status_change(order: Order, status: str) -> None:
    """``commerce.hooks.order_status_guard``: refuse local status changes of exported (or queued) orders.

    Raises :class:`ChangeRefused` with a message naming the order.
    """
    if not module_enabled():
        return
    if order.oms_export_state == Order.EXPORT_EXPORTED:
        raise ChangeRefused(f"Order {order.increment_id} was exported to the OMS; its status is managed by the OMS")
    if order.oms_export_state == Order.EXPORT_QUEUED:
        raise ChangeRefused(
            f"Order {order.increment_id} is being exported to the OMS; its status is managed by the OMS")


# =============================================================================== inbound


#: the order columns the inbound services read (the rest of the row is never loaded)
ORDER_FIELDS = ("id", "increment_id", "state", "status", "oms_status", "oms_status_reason", "oms_status_date",
                "oms_export_state", "oms_exported_at")
#: the item columns an order update reads: the line plan (:func:`mcom.orderlines.plan_lines`) and the
#: OMS line status fields
UPDATE_ITEM_FIELDS = ("id", "order_id", "parent_id", "product_id", "sku", "product_type", "qty_ordered",
                      "qty_canceled", "row_total", "tax_amount", "discount_amount", "price_incl_tax", "oms_status",
                      "oms_status_reason")


def _locked_order(increment_id: str) -> Order:
    """The order row, locked (``SELECT … FOR UPDATE``), with :data:`ORDER_FIELDS` loaded. Raises RetryLater."""
    order = next(iter(Order.objects.select_for_update().only(*ORDER_FIELDS)
                      .filter(increment_id=increment_id).order_by()[:1]), None)
    if order is None:
        raise RetryLater(f"order {increment_id} is not known (yet)")
    return order


def _items(order: Order) -> list[OrderItem]:
    return list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))


def _update_items(order: Order) -> list[OrderItem]:
    """The items of ``order`` with :data:`UPDATE_ITEM_FIELDS` (what an order update reads), in id order.

    The line plan reads a product only for the catalog price of bundle children: the products (id and
    price) are loaded only when the order has a bundle.
    """
    items = sorted(OrderItem.objects.filter(order_id=order.pk).only(*UPDATE_ITEM_FIELDS).order_by(),
                   key=lambda i: i.pk)
    if any(i.product_type == Product.TYPE_BUNDLE for i in items):
        ids = {i.product_id for i in items if i.product_id is not None}
        products = {p.pk: p for p in Product.objects.filter(pk__in=ids).only("id", "price").order_by()}
        for item in items:
            if item.product_id is not None:
                item.product = products.get(item.product_id)
    for item in items:
        item.order = order  # the locked instance; no query when something reads item.order
    return items


def _save_order(order: Order, fields: Sequence[str]) -> None:
    """One UPDATE of ``fields`` of ``order`` (no model signals: none carries business flow, see commerce.hooks)."""
    Order.objects.filter(pk=order.pk).update(**{f: getattr(order, f) for f in fields})


def _index(order: Order, items: Sequence[OrderItem]) -> mappers.LineIndex:
    try:
        return mappers.line_index(items)
    except MappingError as e:
        raise PermanentError(f"order {order.increment_id}: {e}") from None


def _history(order: Order, comment: str, *, once: bool = False) -> None:
    if once and OrderStatusHistory.objects.filter(order=order, comment=comment).exists():
        return
    OrderStatusHistory.objects.create(order=order, status=order.status, comment=comment,
                                      source=OrderStatusHistory.SOURCE_OMS)


def _mark_known_to_oms(order: Order, now: datetime) -> list[str]:
    """The OMS talks about the order, so it has it: mark it exported if it is not yet."""
    if order.oms_export_state == Order.EXPORT_EXPORTED:
        return []
    order.oms_export_state = Order.EXPORT_EXPORTED
    order.oms_exported_at = order.oms_exported_at or now
    order.oms_export_error = ""
    order.oms_next_attempt_at = None
    return ["oms_export_state", "oms_exported_at", "oms_export_error", "oms_next_attempt_at"]


def _cancelled_units(line: Any) -> Decimal:
    if line.quantity_cancelled is not None:
        return Decimal(line.quantity_cancelled)
    if mappers.normalize_code(line.status) == "CANCELLED":
        return Decimal(line.quantity) if line.quantity is not None else Decimal(1)
    return ZERO


def _stale(order: Order, dated: datetime | None, what: str) -> dict[str, Any] | None:
    """The handler result for a message older than the state applied to ``order``, else None."""
    if dated is None or order.oms_status_date is None or dated >= order.oms_status_date:
        return None
    log.info("order %s: %s dated %s is older than the applied state (%s); skipped as stale",
             order.increment_id, what, dated.isoformat(), order.oms_status_date.isoformat())
    return {"order": order.increment_id, "result": "stale", "stale": True, "date": dated.isoformat(),
            "applied_date": order.oms_status_date.isoformat()}


def _advance_date(order: Order, dated: datetime | None) -> list[str]:
    """Remember ``dated`` as the newest applied state date of ``order``; the fields to save."""
    if dated is None or (order.oms_status_date is not None and dated <= order.oms_status_date):
        return []
    order.oms_status_date = dated
    return ["oms_status_date"]


def apply_order_update(update: OrderUpdate) -> dict[str, Any]:
    """``order_management.updated``: OMS status (verbatim in ``oms_status``) → state/status, line statuses,
    cancelled quantities, a history comment when the status changed.

    State-based, applied only forward: an update whose ``status_date`` is older than the newest state
    applied to the order (``Order.oms_status_date``: updates and shipments) changes nothing and returns
    ``result: stale``. An update without a readable date is applied.

    Raises RetryLater (order or line not known yet), PermanentError (order cannot be indexed), before any
    write. Inside an enclosing transaction (the worker's, per message) it takes no savepoint of its own: an
    error leaves that transaction to be rolled back. Idempotent: the same update again changes nothing and
    adds no comment. An unknown status code is kept verbatim and leaves the state unchanged.

    Database work (pinned by tests/sales/test_update_queries.py): the order row locked with the columns
    used, the items with the columns the line plan reads (product prices only for bundles), one UPDATE per
    distinct line change, one UPDATE of the order's changed fields, one history row when the status changed.
    """
    now = timezone.now()
    dated = parse_datetime(update.status_date)
    # savepoint=False: inside the worker's per-message transaction the handler needs no savepoint of its
    # own (any error here rolls that transaction back as a whole); called alone, this is the transaction.
    with transaction.atomic(savepoint=False):
        order = _locked_order(update.order_id)
        stale = _stale(order, dated, "status update")
        if stale is not None:
            return stale
        items = _update_items(order)
        index = _index(order, items)
        per_item: dict[int, list[Any]] = defaultdict(list)
        unknown = []
        for line in update.lines:
            if index.is_shipping(line.id):
                continue
            ref = index.resolve(line.id)
            if ref is None:
                unknown.append(line.id)
            else:
                per_item[ref.item_id].append(line)
        if unknown:
            raise RetryLater(f"order {update.order_id}: unknown line(s) {', '.join(unknown[:5])}")
        changed_items = 0
        # items that change to the same values share one UPDATE (usually: all lines got the same status)
        changes: dict[tuple[str, str, Decimal], list[int]] = defaultdict(list)
        for item in items:
            lines = per_item.get(item.pk)
            if not lines:
                continue
            status = mappers.summarize_statuses([ln.status for ln in lines])
            reason = mappers.summarize_statuses([ln.status_reason for ln in lines])
            cancelled = min(sum((_cancelled_units(ln) for ln in lines), ZERO), Decimal(item.qty_ordered))
            if (item.oms_status, item.oms_status_reason, Decimal(item.qty_canceled)) != (status, reason, cancelled):
                item.oms_status, item.oms_status_reason, item.qty_canceled = status, reason, cancelled
                changes[(status, reason, cancelled)].append(item.pk)
                changed_items += 1
        for (status, reason, cancelled), ids in changes.items():
            OrderItem.objects.filter(pk__in=ids).update(oms_status=status, oms_status_reason=reason,
                                                        qty_canceled=cancelled)
        fields = _mark_known_to_oms(order, now) + _advance_date(order, dated)
        change = mappers.map_order_status(update.status, update.status_reason) if update.status else None
        status_changed = bool(update.status) and (order.oms_status, order.oms_status_reason) != (
            update.status[:64], update.status_reason[:64])
        if status_changed:
            order.oms_status, order.oms_status_reason = update.status[:64], update.status_reason[:64]
            fields += ["oms_status", "oms_status_reason"]
        if change is not None and (order.state, order.status) != (change.state, change.status):
            order.state, order.status = change.state, change.status
            fields += ["state", "status"]
        if fields:
            order.updated_at = now
            _save_order(order, [*fields, "updated_at"])
        if status_changed:
            label = update.status + (f" ({update.status_reason})" if update.status_reason else "")
            note = "" if change is not None else " — unknown status code, order state kept"
            _history(order, f"OMS status {label}{note}")
            if order.state == Order.STATE_CANCELED:
                log.info("order %s canceled by the OMS (%s)", order.increment_id, label)
            else:
                log.info("order %s: OMS status %s applied (state %s%s)", order.increment_id, label, order.state,
                         "" if change is not None else ", unknown code")
        elif changed_items:
            log.info("order %s: OMS line statuses applied (%d line%s changed)", order.increment_id, changed_items,
                     "" if changed_items == 1 else "s")
    return {"order": order.increment_id, "oms_status": order.oms_status, "state": order.state,
            "status": order.status, "lines_changed": changed_items}


def record_order_created(update: OrderUpdate) -> dict[str, Any]:
    """``order_management.created``: the OMS acknowledged the order → exported + one history comment.

    Raises RetryLater (order not known yet). Idempotent.
    """
    with transaction.atomic():
        order = _locked_order(update.order_id)
        fields = _mark_known_to_oms(order, timezone.now())
        if fields:
            order.save(update_fields=fields)
        _history(order, "The OMS acknowledged the order (order_management.created)", once=True)
    return {"order": order.increment_id, "acknowledged": True}


def shipment_dedupe_key(shipment: ShipmentDone, params: Mapping[str, Any]) -> str:
    """Identity of a shipment message: ``<order>:<shipment id>``, else a digest of the params."""
    if shipment.shipment_id:
        return f"{shipment.order_id}:{shipment.shipment_id}"[:255]
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"{shipment.order_id}:sha256:{digest}"[:255]


def parse_datetime(value: str) -> datetime | None:
    """Lenient ISO 8601 / ``YYYY-MM-DD HH:MM:SS[±hh:mm]``; naive = UTC (§12 #17); None when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _sync_composites(items: Sequence[OrderItem]) -> list[OrderItem]:
    """Bundle parents follow their children's shipped fraction; configurable children follow the parent."""
    by_id = {i.pk: i for i in items}
    kids: dict[int, list[OrderItem]] = defaultdict(list)
    for i in items:
        if i.parent_id is not None:
            kids[i.parent_id].append(i)
    changed = []
    for parent_id, children in kids.items():
        parent = by_id.get(parent_id)
        if parent is None or not Decimal(parent.qty_ordered):
            continue
        if parent.product_type == Product.TYPE_CONFIGURABLE:
            for kid in children:
                if kid.qty_shipped != parent.qty_shipped:
                    kid.qty_shipped = parent.qty_shipped
                    changed.append(kid)
            continue
        fractions = [Decimal(k.qty_shipped) / Decimal(k.qty_ordered) for k in children if Decimal(k.qty_ordered)]
        shipped = (min(fractions) * Decimal(parent.qty_ordered)).to_integral_value(rounding="ROUND_FLOOR") \
            if fractions else ZERO
        if Decimal(parent.qty_shipped) != shipped:
            parent.qty_shipped = shipped
            changed.append(parent)
    return changed


def record_shipment(shipment: ShipmentDone, params: Mapping[str, Any]) -> dict[str, Any]:
    """``customer_shipment_done``: a commerce shipment with items and tracking; the order follows
    (complete when every shippable item is shipped or cancelled, else processing).

    Partial shipments add up. A shipment is a fact, so its items are always recorded; the order state it
    implies is applied only forward: a shipment dated before the newest state applied to the order
    (``Order.oms_status_date``) leaves the state as it is and its result says ``stale``.
    Idempotent on the shipment's identity (:func:`shipment_dedupe_key`,
    ``Shipment.dedupe_key`` unique): a repeat returns ``duplicate``. Raises RetryLater (order or line
    not known yet), InvalidPayload (ships no goods line).
    """
    key = shipment_dedupe_key(shipment, params)
    with transaction.atomic(savepoint=False):  # errors are raised before any write (see apply_order_update)
        order = _locked_order(shipment.order_id)
        existing = Shipment.objects.filter(dedupe_key=key).only("id").first()
        if existing is not None:
            return {"order": order.increment_id, "shipment": existing.pk, "duplicate": True}
        items = _items(order)
        index = _index(order, items)
        quantities = mappers.shipped_quantities(shipment, index)
        if quantities.unknown:
            raise RetryLater(f"order {order.increment_id}: unknown line(s) {', '.join(quantities.unknown[:5])}")
        if not quantities.by_item:
            raise InvalidPayload(f"shipment of order {order.increment_id} ships no goods line")
        now = timezone.now()
        record = Shipment.objects.create(
            order=order, oms_shipment_id=shipment.shipment_id[:128], dedupe_key=key,
            source_id=shipment.source_id[:64], method=shipment.method[:64],
            shipped_at=parse_datetime(shipment.shipment_date) or now, created_at=now,
        )
        by_id = {i.pk: i for i in items}
        clipped = []
        rows = []
        for item_id, qty in quantities.by_item.items():
            item = by_id[item_id]
            room = max(Decimal(item.qty_ordered) - Decimal(item.qty_shipped) - Decimal(item.qty_canceled), ZERO)
            if qty > room:
                clipped.append(item.sku)
                qty = room
            if qty <= 0:
                continue
            rows.append(ShipmentItem(shipment=record, order_item=item, qty=qty))
            item.qty_shipped = Decimal(item.qty_shipped) + qty
        ShipmentItem.objects.bulk_create(rows)
        shipped_items = {r.order_item.pk: r.order_item for r in rows}
        shipped_items.update((kid.pk, kid) for kid in _sync_composites(items))
        if shipped_items:  # one UPDATE for every item whose shipped quantity moved (not a save per item)
            OrderItem.objects.bulk_update(list(shipped_items.values()), ["qty_shipped"])
        tracks = [
            ShipmentTrack(shipment=record, carrier=p.carrier[:64], tracking_number=p.tracking_number[:128],
                          tracking_url=p.tracking_link[:512], comment=p.tracking_comment)
            for p in shipment.packages if p.carrier or p.tracking_number
        ]
        ShipmentTrack.objects.bulk_create(tracks)
        shippable = {p.item.pk for p in orderlines.plan_lines(items) if p.item.product_type not in SERVICE_TYPES}
        done = all(
            Decimal(by_id[i].qty_shipped) + Decimal(by_id[i].qty_canceled) >= Decimal(by_id[i].qty_ordered)
            for i in shippable
        )
        fields = _mark_known_to_oms(order, now)
        dated = parse_datetime(shipment.shipment_date)
        stale = _stale(order, dated, "shipment")
        if stale is None and order.state not in (Order.STATE_CANCELED, Order.STATE_CLOSED):
            fields += _advance_date(order, dated)
            state = Order.STATE_COMPLETE if done else Order.STATE_PROCESSING
            if (order.state, order.status) != (state, mappers.STATE_STATUS[state]):
                order.state, order.status = state, mappers.STATE_STATUS[state]
                fields += ["state", "status"]
        if fields:
            order.updated_at = now
            _save_order(order, [*fields, "updated_at"])
        shipped = ", ".join(f"{r.qty.normalize():f} × {r.order_item.sku}" for r in rows)
        tracking = "; ".join(f"{t.carrier} {t.tracking_number}".strip() for t in tracks)
        comment = f"Shipped {shipped}" + (f" from {shipment.source_id}" if shipment.source_id else "")
        comment += f" — tracking {tracking}" if tracking else ""
        comment += f" (more than ordered for {', '.join(clipped)}: clipped)" if clipped else ""
        _history(order, comment)
    log.info("shipment %s of order %s applied: %s%s", record.oms_shipment_id or record.pk, order.increment_id, shipped,
             f" ({tracking})" if tracking else "")
    out: dict[str, Any] = {"order": order.increment_id, "shipment": record.pk, "items": len(rows), "complete": done,
                           "duplicate": False}
    if stale is not None:  # the goods shipped (recorded), but the order state is newer than this shipment
        out.update(result="stale", stale=True, date=stale["date"], applied_date=stale["applied_date"])
    return out


TRACKING_LINKS: dict[str, str] = {
    "DHL": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={}",
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FEDEX": "https://www.fedex.com/fedextrack/?trknbr={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
}


def answer_shipping_details(request: ShippingDetailsRequest) -> list[dict[str, Any]]:
    """Carrier role (§8.10): the packages with ``carrier``, ``tracking_number`` and ``tracking_link`` filled.

    Tracking numbers are derived from order, source and package id, so asking again gives the same
    answer (idempotent). Records one history comment per answered request. Raises RetryLater (order not
    known yet).
    """
    with transaction.atomic():
        order = Order.objects.filter(increment_id=request.order_id).first()
        if order is None:
            raise RetryLater(f"order {request.order_id} is not known (yet)")
        answer = []
        for package in request.packages:
            carrier = package.carrier or (request.method.partition("-")[0] if "-" in request.method else "") or "MCOM"
            seed = f"{order.increment_id}:{request.source_id}:{package.id}"
            number = "MC" + hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:12].upper()
            link = TRACKING_LINKS.get(carrier.upper(), "").format(number)
            answer.append({
                **package.raw, "id": package.id, "carrier": carrier, "tracking_number": number,
                "tracking_link": link, "tracking_comment": f"label for order {order.increment_id}",
                "shipping_label_link": "", "items": list(package.items),
            })
        summary = "; ".join(f"package {p['id']} → {p['carrier']} {p['tracking_number']}" for p in answer)
        _history(order, f"Shipping details given to the OMS: {summary}", once=True)
    return answer


def record_shipment_request(request: ShipmentRequest) -> dict[str, Any]:
    """Warehouse role (§8.11): acknowledge a shipment request and record it as a history comment.

    The warehouse follow-ups (``lines_change_status``, ``lines_shipped``) are not specified by any
    source (§12 #22), so the request is recorded for people to act on. Raises RetryLater (order not
    known yet). Idempotent on ``request_id``.
    """
    with transaction.atomic():
        order = _locked_order(request.order_id)
        per_sku: dict[str, Decimal] = {}
        for it in request.items:
            key = it.sku or it.order_line_id
            per_sku[key] = per_sku.get(key, ZERO) + (it.quantity if it.quantity is not None else Decimal(1))
        lines = ", ".join(f"{qty.normalize():f} × {sku}" for sku, qty in per_sku.items()) or "no lines"
        source = f" from source {request.source_id}" if request.source_id else ""
        _history(order, f"Shipment request {request.request_id}{source}: {lines}", once=True)
    return {"order": order.increment_id, "request_id": request.request_id, "acknowledged": True}
