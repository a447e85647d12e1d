"""JSON test/automation API under ``/_sandbox/api/`` (drives the actions, reads the state)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mcom.sandbox import actions, store
from mcom.sandbox.actions import ActionError, Sandbox
from mcom.sandbox.app import json_response, sandbox
from mcom.sandbox.faults import FAIL_MODES
from mcom.sandbox.values import num, text

Endpoint = Callable[[Request], Awaitable[Response]]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ActionError("the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ActionError("the body must be a JSON object")
    return doc


def guarded(endpoint: Endpoint) -> Endpoint:
    """Turn :class:`ActionError` into ``{"error": ...}`` with its HTTP status."""
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ActionError as exc:
            return json_response({"error": exc.message}, exc.status)
    return wrapper


def _int(request: Request, name: str, default: int, cap: int = 100_000) -> int:
    return min(cap, max(0, int(num(request.query_params.get(name), default))))


def order_detail(sb: Sandbox, order_id: str) -> dict[str, Any]:
    with sb.store.read() as db:
        order = store.order_get(db, order_id)
        if order is None:
            raise ActionError(f"unknown order {order_id}", 404)
        return {
            "id": order.id, "store": order.store, "status": order.status, "status_reason": order.status_reason,
            "status_date": order.status_date, "created_at": order.created_at, "payload": order.payload,
            "lines": [{"id": ln.line_id, "line_number": ln.line_number, "sku": ln.sku,
                       "product_type": ln.product_type, "quantity": ln.quantity, "qty_shipped": ln.qty_shipped,
                       "qty_cancelled": ln.qty_cancelled, "status": ln.status, "status_reason": ln.status_reason}
                      for ln in order.lines],
            "shipments": store.shipments(db, order_id),
            "shipping_details": store.shipping_details(db, order_id),
            "returns": [r for r in store.rma_list(db, limit=1000) if r["order_id"] == order_id],
        }


def state(sb: Sandbox) -> dict[str, Any]:
    with sb.store.read() as db:
        counts = store.counts(db)
    return {"counts": counts, "faults": sb.faults.snapshot(), "active_tokens": sb.tokens.active(),
            "token_ttl": sb.tokens.ttl, "methods": sb.methods.methods(), "can_go_down": sb.listener is not None}


async def apply_faults(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """Apply fault switches; keys: fail_next, mode, latency_ms, malformed_next, expire_tokens, down, down_seconds, up, reset."""
    mode = body.get("mode", body.get("fail_mode"))
    if mode is not None and mode not in FAIL_MODES:
        raise ActionError(f"mode must be one of {', '.join(FAIL_MODES)}")
    if body.get("reset"):
        sb.faults.reset()
    sb.faults.configure(
        fail_next=int(num(body["fail_next"])) if body.get("fail_next") is not None else None,
        fail_mode=mode, latency_ms=int(num(body["latency_ms"])) if body.get("latency_ms") is not None else None,
        malformed_next=int(num(body["malformed_next"])) if body.get("malformed_next") is not None else None,
    )
    expired = sb.tokens.expire_all() if body.get("expire_tokens") else 0
    if (body.get("down") or body.get("up")) and sb.listener is None:
        raise ActionError("down/up needs the sandbox's own server (mcom oms:sandbox or SandboxServer)", 409)
    if body.get("up") and sb.faults.snapshot()["down"]:
        await sb.listener.go_up()  # type: ignore[union-attr]
        sb.faults.set_down(False)
    if body.get("down"):
        seconds = num(body.get("down_seconds"), 0)
        await _go_down(sb, seconds)
    return {**sb.faults.snapshot(), "expired_tokens": expired}


async def _go_down(sb: Sandbox, seconds: float) -> None:
    listener = sb.listener
    assert listener is not None
    if not sb.faults.snapshot()["down"]:
        sb.faults.set_down(True)
        # Stop listening once this answer is on its way (the connection closes after it).
        await listener.go_down()
    if seconds > 0:
        async def back_up() -> None:
            await asyncio.sleep(seconds)
            if sb.faults.snapshot()["down"]:
                await listener.go_up()
                sb.faults.set_down(False)
        task = asyncio.create_task(back_up())
        sb.background.add(task)
        task.add_done_callback(sb.background.discard)


# --- endpoints ----------------------------------------------------------------------------
async def get_state(request: Request) -> Response:
    return json_response(state(sandbox(request)))


async def get_journal(request: Request) -> Response:
    q = request.query_params
    with sandbox(request).store.read() as db:
        entries = store.journal_list(db, method=q.get("method") or None, direction=q.get("direction") or None,
                                     status=q.get("status") or None, limit=_int(request, "limit", 200),
                                     before_id=int(q["before_id"]) if q.get("before_id", "").isdigit() else None)
    return json_response(entries)


async def post_redeliver(request: Request) -> Response:
    return json_response(await actions.redeliver(sandbox(request), int(request.path_params["entry_id"])))


async def get_orders(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        rows = store.order_list(db, q=request.query_params.get("q", ""), limit=_int(request, "limit", 1000),
                                offset=_int(request, "offset", 0, 10**9))
    return json_response(rows)


async def get_order(request: Request) -> Response:
    return json_response(order_detail(sandbox(request), request.path_params["order_id"]))


async def post_ship(request: Request) -> Response:
    b = await _body(request)
    result = await actions.ship(
        sandbox(request), request.path_params["order_id"], b.get("lines"), carrier=text(b.get("carrier"), "DHL"),
        tracking_number=b.get("tracking_number") or b.get("tracking") or None,
        tracking_link=text(b.get("tracking_link")), source_id=b.get("source_id") or None,
    )
    return json_response(result)


async def post_cancel(request: Request) -> Response:
    b = await _body(request)
    return json_response(await actions.cancel_lines(sandbox(request), request.path_params["order_id"],
                                                    b.get("lines"), reason=text(b.get("reason"), "CUSTOMERREQ")))


async def post_status(request: Request) -> Response:
    b = await _body(request)
    return json_response(await actions.set_status(sandbox(request), request.path_params["order_id"],
                                                  text(b.get("status")), text(b.get("reason"))))


async def post_shipping_details(request: Request) -> Response:
    b = await _body(request)
    result = await actions.request_shipping_details(
        sandbox(request), request.path_params["order_id"], b.get("lines"), carrier=text(b.get("carrier"), "DHL"),
        source_id=b.get("source_id") or None)
    return json_response(result, 200 if result["packages"] is not None else 502)


async def post_request_shipment(request: Request) -> Response:
    b = await _body(request)
    return json_response(await actions.request_shipment(sandbox(request), request.path_params["order_id"],
                                                        b.get("lines"), source_id=b.get("source_id") or None))


async def get_products(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        rows = store.product_list(db, q=request.query_params.get("q", ""), limit=_int(request, "limit", 1000),
                                  offset=_int(request, "offset", 0, 10**9),
                                  full=request.query_params.get("full", "") in ("1", "true"))
    return json_response(rows)


async def get_product(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        product = store.product_get(db, request.path_params["sku"])
    if product is None:
        raise ActionError("unknown product", 404)
    return json_response(product)


async def get_stock(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        doc = {"aggregates": store.aggregates(db), "sources": store.sources(db),
               "inventory": store.inventory_list(db, limit=_int(request, "limit", 1000))}
    return json_response(doc)


async def post_snapshot(request: Request) -> Response:
    b = await _body(request)
    items = b.get("items")
    if items is not None and not isinstance(items, list):
        raise ActionError("items must be a list")
    return json_response(await actions.stock_snapshot(
        sandbox(request), text(b.get("aggregate", b.get("aggregate_id")), "default"), text(b.get("mode"), "FULL"),
        items, b.get("created_on") or None))


async def post_inventory(request: Request) -> Response:
    b = await _body(request)
    return json_response(actions.set_inventory(sandbox(request), text(b.get("source", b.get("source_id")), "WH1"),
                                               b.get("items")))


async def post_aggregate(request: Request) -> Response:
    b = await _body(request)
    return json_response(actions.put_aggregate(sandbox(request), text(b.get("id")), text(b.get("name"))))


async def post_source(request: Request) -> Response:
    b = await _body(request)
    return json_response(actions.put_source(sandbox(request), text(b.get("id")), text(b.get("name")),
                                            b.get("aggregate_ids"), b.get("address")))


async def get_returns(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        return json_response(store.rma_list(db, limit=_int(request, "limit", 1000)))


async def get_return(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        row = store.rma_get(db, request.path_params["rma"])
    if row is None:
        raise ActionError("unknown return", 404)
    return json_response(row)


async def post_approve(request: Request) -> Response:
    return json_response(await actions.decide_return(sandbox(request), request.path_params["rma"], "APPROVED"))


async def post_reject(request: Request) -> Response:
    return json_response(await actions.decide_return(sandbox(request), request.path_params["rma"], "REJECTED"))


async def post_refund(request: Request) -> Response:
    b = await _body(request)
    return json_response(await actions.refund(sandbox(request), request.path_params["rma"],
                                              text(b.get("status"), "RELEASED")))


async def get_registrations(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        return json_response(store.integration_details(db))


async def get_faults(request: Request) -> Response:
    return json_response(sandbox(request).faults.snapshot())


async def post_faults(request: Request) -> Response:
    return json_response(await apply_faults(sandbox(request), await _body(request)))


def routes() -> list[BaseRoute]:
    p = "/_sandbox/api"
    table: list[tuple[str, Endpoint, str]] = [
        ("/state", get_state, "GET"),
        ("/journal", get_journal, "GET"),
        ("/journal/{entry_id:int}/redeliver", post_redeliver, "POST"),
        ("/orders", get_orders, "GET"),
        ("/orders/{order_id}", get_order, "GET"),
        ("/orders/{order_id}/ship", post_ship, "POST"),
        ("/orders/{order_id}/cancel", post_cancel, "POST"),
        ("/orders/{order_id}/status", post_status, "POST"),
        ("/orders/{order_id}/shipping-details", post_shipping_details, "POST"),
        ("/orders/{order_id}/request-shipment", post_request_shipment, "POST"),
        ("/products", get_products, "GET"),
        ("/products/{sku:path}", get_product, "GET"),
        ("/stock", get_stock, "GET"),
        ("/stock/snapshot", post_snapshot, "POST"),
        ("/stock/inventory", post_inventory, "POST"),
        ("/stock/aggregates", post_aggregate, "POST"),
        ("/stock/sources", post_source, "POST"),
        ("/returns", get_returns, "GET"),
        ("/returns/{rma}", get_return, "GET"),
        ("/returns/{rma}/approve", post_approve, "POST"),
        ("/returns/{rma}/reject", post_reject, "POST"),
        ("/returns/{rma}/refund", post_refund, "POST"),
        ("/registrations", get_registrations, "GET"),
        ("/faults", get_faults, "GET"),
        ("/faults", post_faults, "POST"),
    ]
    return [Route(p + path, guarded(endpoint), methods=[method]) for path, endpoint, method in table]
