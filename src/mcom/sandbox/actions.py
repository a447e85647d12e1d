"""Actions an operator (UI) or a test (JSON API) triggers: they change OMS state and deliver.

Every action commits its state change first, then delivers (network after commit). Bad
input raises :class:`ActionError` with the HTTP status to answer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from mcom.sandbox import oms, payloads, store
from mcom.sandbox.bus import MethodRegistry, TokenIssuer
from mcom.sandbox.delivery import Deliverer, DeliveryResult
from mcom.sandbox.faults import Faults
from mcom.sandbox.protocol import (
    ORDER_UPDATED,
    REFUND_UPDATED,
    REQUEST_SHIPMENT,
    REQUEST_SHIPPING_DETAILS,
    RETURN_UPDATED,
    SHIPMENT_DONE,
    STOCK_UPDATED,
)
from mcom.sandbox.values import num, quantity, text

SNAPSHOT_MODES = ("FULL", "DELTA", "NONZERO")
REFUND_STATUSES = ("RELEASED", "PENDINGRELEASE")


class ActionError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Listener:
    """Something that can stop and restart accepting connections (set by the server)."""

    async def go_down(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def go_up(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Sandbox:
    """Everything a request handler needs; one per app (``app.state.sandbox``)."""

    store: store.Store
    tokens: TokenIssuer
    faults: Faults
    deliverer: Deliverer
    methods: MethodRegistry
    listener: Listener | None = None
    background: set[Any] = field(default_factory=set)


def _deliveries(results: list[DeliveryResult]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in results]


def _order(db: sqlite3.Connection, order_id: str) -> store.Order:
    order = store.order_get(db, order_id)
    if order is None:
        raise ActionError(f"unknown order {order_id}", 404)
    return order


def _wanted(order: store.Order, lines: Any) -> list[tuple[store.Line, float | None]]:
    """Requested lines as ``(line, qty or None for all remaining)``; None = every open goods line."""
    if lines is None or lines == [] or lines == "":
        return [(ln, None) for ln in order.lines if not ln.is_shipping and ln.remaining > 1e-9]
    specs: list[tuple[str, float | None]] = []
    if isinstance(lines, dict):
        specs = [(str(k), None if v in (None, "") else num(v, -1)) for k, v in lines.items()]
    elif isinstance(lines, list):
        for item in lines:
            if isinstance(item, dict):
                qty = item.get("quantity", item.get("qty"))
                specs.append((text(item.get("id", item.get("line_id"))), None if qty in (None, "") else num(qty, -1)))
            else:
                specs.append((text(item), None))
    else:
        raise ActionError("lines must be a list of line ids or of {id, quantity}")
    out: list[tuple[store.Line, float | None]] = []
    for line_id, qty in specs:
        line = order.line(line_id)
        if line is None:
            raise ActionError(f"order {order.id} has no line {line_id!r}")
        if qty is not None and (qty <= 0 or qty > line.remaining + 1e-9):
            raise ActionError(f"line {line_id}: quantity must be > 0 and at most {line.remaining:g}")
        out.append((line, qty))
    return out


def _settle(db: sqlite3.Connection, order_id: str) -> store.Order:
    order = _order(db, order_id)
    status = oms.order_status(order)
    if status is not None and status != (order.status, order.status_reason):
        store.order_set_status(db, order_id, *status)
        order = _order(db, order_id)
    return order


def _source(order: store.Order, requested: str | None) -> str:
    if requested:
        return requested
    for line in order.lines:
        if line.payload.get("source_id"):
            return text(line.payload.get("source_id"))
    return "WH1"


async def ship(sb: Sandbox, order_id: str, lines: Any = None, *, carrier: str = "DHL",
               tracking_number: str | None = None, tracking_link: str = "",
               source_id: str | None = None) -> dict[str, Any]:
    """Ship lines (all open goods lines by default): shipment done, then order updated."""
    with sb.store.tx() as db:
        order = _order(db, order_id)
        wanted = _wanted(order, lines)
        if not wanted:
            raise ActionError(f"order {order_id} has nothing left to ship", 409)
        shipped: list[tuple[store.Line, float]] = []
        first_shipment = not any(ln.qty_shipped > 0 for ln in order.lines)
        for line, qty in wanted:
            amount = line.remaining if qty is None else qty
            if amount <= 1e-9:
                raise ActionError(f"line {line.line_id} has nothing left to ship", 409)
            new_shipped = line.qty_shipped + amount
            store.line_update(db, order_id, line.line_id, qty_shipped=new_shipped, qty_cancelled=line.qty_cancelled,
                              status=oms.line_status(line, new_shipped, line.qty_cancelled)[0],
                              reason=oms.line_status(line, new_shipped, line.qty_cancelled)[1])
            shipped.append((line, amount))
        if first_shipment:
            for line in order.lines:
                if line.is_shipping and line.remaining > 1e-9:
                    store.line_update(db, order_id, line.line_id, qty_shipped=line.quantity - line.qty_cancelled,
                                      qty_cancelled=line.qty_cancelled, status="SHIPPED", reason="OSREPORT")
        order = _settle(db, order_id)
        shipment_id = f"{order_id}-{len(store.shipments(db, order_id)) + 1:03d}"
        tracking = tracking_number or f"SBX{store.next_counter(db, 'tracking'):09d}"
        fresh = {ln.line_id: ln for ln in order.lines}
        done = payloads.shipment_done(
            order, [(fresh[ln.line_id], qty) for ln, qty in shipped], shipment_id=shipment_id,
            source_id=_source(order, source_id), carrier=carrier, tracking_number=tracking,
            tracking_link=tracking_link,
        )
        store.shipment_add(db, shipment_id, order_id, done)
        updated = payloads.order_updated(order)
    results = await sb.deliverer.deliver(SHIPMENT_DONE, done)
    results += await sb.deliverer.deliver(ORDER_UPDATED, updated)
    return {"shipment_id": shipment_id, "tracking_number": tracking, "order_status": order.status,
            "order_status_reason": order.status_reason, "deliveries": _deliveries(results)}


async def cancel_lines(sb: Sandbox, order_id: str, lines: Any = None, *, reason: str = "CUSTOMERREQ") -> dict[str, Any]:
    """Cancel lines (all open goods lines by default), then deliver order updated."""
    with sb.store.tx() as db:
        order = _order(db, order_id)
        wanted = _wanted(order, lines)
        if not wanted:
            raise ActionError(f"order {order_id} has nothing left to cancel", 409)
        for line, qty in wanted:
            amount = line.remaining if qty is None else qty
            cancelled = line.qty_cancelled + amount
            status, why = oms.line_status(line, line.qty_shipped, cancelled)
            store.line_update(db, order_id, line.line_id, qty_shipped=line.qty_shipped, qty_cancelled=cancelled,
                              status=status, reason=reason if status == "CANCELLED" else why)
        order = _order(db, order_id)
        if all(ln.status == "CANCELLED" for ln in order.lines if not ln.is_shipping):
            for line in order.lines:
                if line.is_shipping and line.qty_shipped <= 0:
                    store.line_update(db, order_id, line.line_id, qty_shipped=0, qty_cancelled=line.quantity,
                                      status="CANCELLED", reason=reason)
        order = _settle(db, order_id)
        updated = payloads.order_updated(order)
    results = await sb.deliverer.deliver(ORDER_UPDATED, updated)
    return {"order_status": order.status, "order_status_reason": order.status_reason,
            "deliveries": _deliveries(results)}


async def set_status(sb: Sandbox, order_id: str, status: str, reason: str = "") -> dict[str, Any]:
    """Set any order status (codes kept verbatim, §12 #13), then deliver order updated."""
    if not status.strip():
        raise ActionError("status is required")
    with sb.store.tx() as db:
        _order(db, order_id)
        store.order_set_status(db, order_id, status.strip(), reason.strip())
        order = _order(db, order_id)
        updated = payloads.order_updated(order)
    results = await sb.deliverer.deliver(ORDER_UPDATED, updated)
    return {"order_status": order.status, "order_status_reason": order.status_reason,
            "deliveries": _deliveries(results)}


async def stock_snapshot(sb: Sandbox, aggregate_id: str, mode: str, items: list[dict[str, Any]] | None = None,
                         created_on: str | None = None) -> dict[str, Any]:
    """Deliver a stock snapshot, split into messages of at most 10,000 SKUs.

    Without ``items`` the snapshot is computed from the per-source inventory of the
    aggregate's sources (FULL/DELTA: every known SKU, NONZERO: SKUs with stock).
    """
    mode = mode.strip().upper()
    if mode not in SNAPSHOT_MODES:
        raise ActionError(f"mode must be one of {', '.join(SNAPSHOT_MODES)}")
    if not aggregate_id.strip():
        raise ActionError("aggregate is required")
    with sb.store.tx() as db:
        if store.aggregate_get(db, aggregate_id) is None:
            store.aggregate_put(db, aggregate_id, aggregate_id)
        if items is None:
            quantities = store.aggregate_quantities(db, aggregate_id)
            skus = sorted(set(store.all_skus(db)) | set(quantities))
            items = [{"sku": sku, "quantity": quantities.get(sku, 0.0)} for sku in skus]
            if mode == "NONZERO":
                items = [i for i in items if i["quantity"] > 0]
    if not isinstance(items, list) or not all(isinstance(i, dict) and text(i.get("sku")) for i in items):
        raise ActionError("items must be a list of {sku, quantity, unlimited?}")
    if not sb.faults.take_malformed():  # the fault switch lets a bad quantity through on purpose
        items = [{**i, "quantity": _quantity(i.get("quantity", 0), f"items[{n}].quantity ({i['sku']})")}
                 for n, i in enumerate(items)]
    messages = payloads.stock_snapshots(aggregate_id, mode, items, created_on)
    results: list[DeliveryResult] = []
    for params in messages:
        results += await sb.deliverer.deliver(STOCK_UPDATED, params)
    return {"messages": len(messages), "skus": len(items), "deliveries": _deliveries(results)}


def _rma(db: sqlite3.Connection, rma: str) -> dict[str, Any]:
    row = store.rma_get(db, rma)
    if row is None:
        raise ActionError(f"unknown return {rma}", 404)
    return row


async def decide_return(sb: Sandbox, rma: str, status: str) -> dict[str, Any]:
    """Approve or reject a REQUESTED return; deliver return updated."""
    with sb.store.tx() as db:
        row = _rma(db, rma)
        if row["status"] != "REQUESTED":
            raise ActionError(f"return {rma} is {row['status']}, not REQUESTED", 409)
        store.rma_set_status(db, rma, status)
        row = _rma(db, rma)
    results = await sb.deliverer.deliver(RETURN_UPDATED, payloads.return_updated(row, status))
    return {"rma": rma, "status": status, "deliveries": _deliveries(results)}


async def refund(sb: Sandbox, rma: str, status: str = "RELEASED") -> dict[str, Any]:
    """Deliver refund updated for a return (once RELEASED; PENDINGRELEASE may come first)."""
    status = status.strip().upper()
    if status not in REFUND_STATUSES:
        raise ActionError(f"status must be one of {', '.join(REFUND_STATUSES)}")
    with sb.store.tx() as db:
        row = _rma(db, rma)
        if row["status"] == "REJECTED":
            raise ActionError(f"return {rma} was rejected", 409)
        if row["refund_status"] == "RELEASED":
            raise ActionError(f"return {rma} is already refunded", 409)
        order = _order(db, row["order_id"])
        credit_note = row["credit_note_number"] or f"CDE{store.next_counter(db, 'credit_note')}"
        store.rma_set_refund(db, rma, status, credit_note)
        params = payloads.refund_updated(row, order, credit_note_number=credit_note, status=status)
    results = await sb.deliverer.deliver(REFUND_UPDATED, params)
    return {"rma": rma, "credit_note_number": credit_note, "status": status, "deliveries": _deliveries(results)}


async def request_shipping_details(sb: Sandbox, order_id: str, lines: Any = None, *, carrier: str = "DHL",
                                   source_id: str | None = None) -> dict[str, Any]:
    """Ask the connector (carrier role) synchronously; record the packages it answers."""
    with sb.store.read() as db:
        order = _order(db, order_id)
    chosen = [ln for ln, _ in _wanted(order, lines)]
    if not chosen:
        raise ActionError(f"order {order_id} has no open lines", 409)
    params = payloads.shipping_details_request(order, chosen, source_id=_source(order, source_id), carrier=carrier)
    results = await sb.deliverer.deliver(REQUEST_SHIPPING_DETAILS, params, timeout=30.0)
    answer = next((r for r in results if r.ok), None)
    packages = answer.result if answer is not None else None
    error = ""
    if answer is None:
        error = results[0].error if results else "no delivery"
    elif not isinstance(packages, list):
        error = "the answer's result is not an array of packages"
        packages = None
    else:
        with sb.store.tx() as db:
            store.shipping_details_add(db, order_id, packages)
    return {"packages": packages, "error": error, "deliveries": _deliveries(results)}


async def request_shipment(sb: Sandbox, order_id: str, lines: Any = None, *,
                           source_id: str | None = None) -> dict[str, Any]:
    """Deliver a warehouse ``request_shipment`` command for the open lines."""
    with sb.store.tx() as db:
        order = _order(db, order_id)
        chosen = [ln for ln, _ in _wanted(order, lines)]
        if not chosen:
            raise ActionError(f"order {order_id} has no open lines", 409)
        request_id = f"{order_id}-R{store.next_counter(db, 'shipment_request')}"
    params = payloads.shipment_request(order, chosen, source_id=_source(order, source_id), request_id=request_id)
    results = await sb.deliverer.deliver(REQUEST_SHIPMENT, params)
    return {"request_id": request_id, "deliveries": _deliveries(results)}


async def redeliver(sb: Sandbox, journal_id: int) -> dict[str, Any]:
    try:
        results = await sb.deliverer.redeliver(journal_id)
    except LookupError as exc:
        raise ActionError(str(exc), 404) from None
    return {"deliveries": _deliveries(results)}


def _quantity(value: Any, where: str) -> float:
    try:
        return quantity(value, where)
    except ValueError as e:
        raise ActionError(str(e)) from None


def set_inventory(sb: Sandbox, source_id: str, items: Any) -> dict[str, Any]:
    if not isinstance(items, list) or not all(isinstance(i, dict) and text(i.get("sku")) for i in items):
        raise ActionError("items must be a list of {sku, quantity}")
    with sb.store.tx() as db:
        if source_id not in {s["id"] for s in store.sources(db)}:
            raise ActionError(f"unknown source {source_id}", 404)
        rows = [(text(i["sku"]), _quantity(i.get("quantity", i.get("qty", 0)), f"items[{n}].quantity ({i['sku']})"))
                for n, i in enumerate(items)]
        store.inventory_set(db, source_id, rows)
    return {"source_id": source_id, "items": len(items)}


def put_aggregate(sb: Sandbox, aggregate_id: str, name: str = "") -> dict[str, Any]:
    if not aggregate_id.strip():
        raise ActionError("aggregate id is required")
    with sb.store.tx() as db:
        store.aggregate_put(db, aggregate_id.strip(), name.strip() or aggregate_id.strip())
    return {"id": aggregate_id.strip()}


def put_source(sb: Sandbox, source_id: str, name: str = "", aggregate_ids: Any = None,
               address: Any = None) -> dict[str, Any]:
    if not source_id.strip():
        raise ActionError("source id is required")
    ids = [text(a) for a in aggregate_ids] if isinstance(aggregate_ids, list) else ["default"]
    merged = {**store.DEFAULT_ADDRESS, **(address if isinstance(address, dict) else {})}
    with sb.store.tx() as db:
        for aggregate in ids:
            if store.aggregate_get(db, aggregate) is None:
                store.aggregate_put(db, aggregate, aggregate)
        store.source_put(db, source_id.strip(), name.strip() or source_id.strip(), ids, merged)
    return {"id": source_id.strip(), "aggregate_ids": ids}
