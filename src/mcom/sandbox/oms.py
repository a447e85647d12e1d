"""The OMS side: handlers of the methods the connector calls, and order state transitions.

Handlers take the open transaction and the call's params, validate only what they read
(raising -32602 on missing required fields) and keep the rest of the payload verbatim.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from mcom.sandbox import payloads, store
from mcom.sandbox.bus import MethodRegistry, Outcome
from mcom.sandbox.protocol import (
    LINES_SHIPPED,
    ORDER_CREATE,
    PRODUCT_UPDATED,
    REGISTER,
    RETURN_AUTHORIZE,
    RETURN_UPDATED,
    SOURCE_SEARCH,
    UNREGISTER,
    dumps,
    invalid_params,
)
from mcom.sandbox.values import num, require_id, require_obj, text


def register(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Store or replace the integration ``params.id`` (idempotent; re-register replaces)."""
    integration_id = require_id(params, "id", "id")
    url = params.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid_params("url is required (non-empty string)")
    secret = params.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise invalid_params("secret must be a string")
    topics = params.get("subscribes", params.get("topics", []))
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise invalid_params("subscribes must be an array of method names")
    labels = params.get("labels") or {}
    if not isinstance(labels, dict):
        raise invalid_params("labels must be an object")
    stored = {k: v for k, v in params.items() if k != "secret"}
    store.integration_put(db, id=integration_id, url=url.strip(), secret=secret or "", subscribes=topics,
                          labels=labels, payload=stored)
    return Outcome({"id": integration_id, "url": url.strip(), "subscribes": topics})


def unregister(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    integration_id = require_id(params, "id", "id")
    removed = store.integration_delete(db, integration_id)
    return Outcome({"id": integration_id, "removed": removed},
                   note="" if removed else "integration was not registered")


def order_create(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Store ``params.order`` with status NEW; a known order id is acknowledged, not stored twice."""
    order = require_obj(params, "order")
    order_id = require_id(order, "id", "order.id")
    lines = order.get("lines")
    if not isinstance(lines, list) or not lines:
        raise invalid_params("order.lines must be a non-empty array")
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid_params(f"order.lines[{index}] must be an object")
        line_id = require_id(line, "id", f"order.lines[{index}].id")
        sku = require_id(line, "sku", f"order.lines[{index}].sku")
        if line_id in seen:
            raise invalid_params(f"order.lines[{index}].id {line_id!r} is repeated")
        seen.add(line_id)
        quantity = num(line.get("quantity", line.get("qty", 1)), 1.0)
        rows.append((line_id, int(num(line.get("line_number"), index + 1)), sku,
                     text(line.get("product_type"), "PHYSICAL") or "PHYSICAL",
                     quantity if quantity > 0 else 1.0, dumps(line)))
    if store.order_exists(db, order_id):
        return Outcome({"order_id": order_id, "duplicate": True},
                       note=f"duplicate: order {order_id} already exists, not stored again")
    store.order_insert(db, order, rows)
    return Outcome({"order_id": order_id, "status": "NEW", "duplicate": False})


def product_updated(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Upsert ``params.product`` by sku, keeping the whole payload."""
    product = require_obj(params, "product")
    sku = require_id(product, "sku", "product.sku")
    names = product.get("name")
    if isinstance(names, list) and names and isinstance(names[0], dict):
        name = text(names[0].get("value"))
    else:
        name = text(names)
    enabled = product.get("enabled")
    if not isinstance(enabled, bool):
        enabled = text(product.get("status"), "active").lower() in ("active", "enabled", "1", "true")
    store.product_upsert(db, product, name, enabled)
    return Outcome({"sku": sku})


def source_search(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Sources with their aggregates: ``{items, offset, size, total}`` (§8.5)."""
    offset = max(0, int(num(params.get("offset"), 0)))
    size = max(1, int(num(params.get("size"), 1000)))
    everything = store.sources(db)
    items = [payloads.source_item(s) for s in everything[offset:offset + size]]
    return Outcome({"items": items, "offset": offset, "size": size, "total": len(everything)})


def return_authorize(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Create RMA ``RMA-CS-<order id>-<n>``; return updated REQUESTED follows after the answer."""
    ret = require_obj(params, "return")
    order_id = require_id(ret, "order_id", "return.order_id")
    lines = ret.get("lines")
    if not isinstance(lines, list) or not lines:
        raise invalid_params("return.lines must be a non-empty array")
    order = store.order_get(db, order_id)
    if order is None:
        raise invalid_params(f"unknown order {order_id}")
    resolved = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise invalid_params(f"return.lines[{index}] must be an object")
        match = order.line(text(line.get("id"))) if line.get("id") is not None else None
        if match is None and line.get("sku") is not None:
            match = next((ln for ln in order.lines if ln.sku == text(line.get("sku"))), None)
        if match is None:
            raise invalid_params(f"return.lines[{index}] matches no line of order {order_id}")
        resolved.append({**line, "id": match.line_id, "line_number": match.line_number, "sku": match.sku})
    rma = f"RMA-CS-{order_id}-{store.rma_count(db, order_id) + 1}"
    stored = {**ret, "lines": resolved}
    store.rma_insert(db, rma, order_id, stored)
    row = store.rma_get(db, rma)
    assert row is not None
    return Outcome({"rma": rma, "status": "REQUESTED"},
                   deliver_after=[(RETURN_UPDATED, payloads.return_updated(row, "REQUESTED"))])


def lines_shipped(db: sqlite3.Connection, params: dict[str, Any]) -> Outcome:
    """Accepted and journaled; the payload is not specified by any source (§12 #22)."""
    return Outcome({})


def registry() -> MethodRegistry:
    methods = MethodRegistry()
    methods.register(REGISTER, register)
    methods.register(UNREGISTER, unregister)
    methods.register(ORDER_CREATE, order_create)
    methods.register(PRODUCT_UPDATED, product_updated)
    methods.register(SOURCE_SEARCH, source_search)
    methods.register(RETURN_AUTHORIZE, return_authorize)
    methods.register(LINES_SHIPPED, lines_shipped)
    return methods


# --- order state transitions (used by the actions) ---------------------------------------
def line_status(line: store.Line, shipped: float, cancelled: float) -> tuple[str, str]:
    if shipped + cancelled >= line.quantity - 1e-9:
        return ("SHIPPED", "OSREPORT") if shipped > 0 else ("CANCELLED", "CUSTOMERREQ")
    return line.status, line.status_reason


def order_status(order: store.Order) -> tuple[str, str] | None:
    """Order status implied by its lines, or None to leave it as it is."""
    goods = [ln for ln in order.lines if not ln.is_shipping] or list(order.lines)
    if all(ln.status == "CANCELLED" for ln in goods):
        return "CANCELLED", "FULLYCANCELLED"
    if all(ln.remaining <= 1e-9 for ln in goods):
        return "COMPLETE", "FULLYSHIPPED"
    if any(ln.qty_shipped > 0 for ln in goods):
        return "LOGISTICS", "PARTIALLYSHIPPED"
    return None
