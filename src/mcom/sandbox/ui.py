"""The web UI under ``/_sandbox/``: pages (GET) and forms (POST → redirect with a flash message)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from mcom import __version__
from mcom.sandbox import actions, api, store
from mcom.sandbox.actions import ActionError, Sandbox
from mcom.sandbox.app import sandbox
from mcom.sandbox.values import num

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["version"] = __version__
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)
PAGE = 100


def page(request: Request, name: str, **context: Any) -> Response:
    context.setdefault("flash", request.query_params.get("flash", ""))
    context.setdefault("level", request.query_params.get("level", "ok"))
    return templates.TemplateResponse(request, name, context)


def back(request: Request, fallback: str, message: str, level: str = "ok") -> RedirectResponse:
    target = str(request.headers.get("referer") or fallback).split("?")[0]
    return RedirectResponse(f"{target}?{urlencode({'flash': message, 'level': level})}", status_code=303)


def summary(prefix: str, result: dict[str, Any]) -> tuple[str, str]:
    deliveries = result.get("deliveries", [])
    failed = [d for d in deliveries if d["status"] != "SUCCESS"]
    text = f"{prefix}; {len(deliveries) - len(failed)}/{len(deliveries)} deliveries succeeded"
    if failed:
        text += f" (first error: {failed[0]['error']})"
    return text, "error" if failed else "ok"


FormAction = Callable[[Sandbox, Request, FormData], Awaitable[tuple[str, str]]]


def form_route(path: str, fallback: str, action: FormAction) -> Route:
    async def endpoint(request: Request) -> Response:
        form = await request.form()
        try:
            message, level = await action(sandbox(request), request, form)
        except ActionError as exc:
            message, level = exc.message, "error"
        return back(request, fallback.format(**request.path_params), message, level)
    return Route(path, endpoint, methods=["POST"])


def _lines_from_form(form: FormData) -> dict[str, float] | None:
    """``qty_<line id>`` inputs with a value; None when all are empty (= every open line)."""
    chosen = {k[4:]: num(v, -1) for k, v in form.items() if k.startswith("qty_") and str(v).strip()}
    return chosen or None


def _items_from_text(raw: str) -> list[dict[str, Any]]:
    """``sku,quantity[,unlimited]`` per line."""
    items = []
    for row in raw.splitlines():
        parts = [p.strip() for p in row.split(",")]
        if not parts or not parts[0]:
            continue
        # kept as typed: the action refuses what is not a number (``MS-000001,abc``) with a message
        item: dict[str, Any] = {"sku": parts[0], "quantity": parts[1] if len(parts) > 1 and parts[1] else 0}
        if len(parts) > 2 and parts[2]:
            item["unlimited"] = parts[2].lower() in ("1", "true", "yes", "unlimited")
        items.append(item)
    return items


def _f(form: FormData, key: str, default: str = "") -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else default


# --- pages --------------------------------------------------------------------------------
async def dashboard(request: Request) -> Response:
    sb = sandbox(request)
    with sb.store.read() as db:
        recent = store.journal_list(db, limit=10)
        registrations = store.integration_details(db)
    return page(request, "dashboard.html", state=api.state(sb), recent=recent, registrations=registrations,
                base_url=str(request.base_url))


async def orders(request: Request) -> Response:
    q = request.query_params.get("q", "")
    n = max(0, int(num(request.query_params.get("page"), 0)))
    with sandbox(request).store.read() as db:
        rows = store.order_list(db, q=q, limit=PAGE + 1, offset=n * PAGE)
    return page(request, "orders.html", rows=rows[:PAGE], q=q, page_no=n, more=len(rows) > PAGE)


async def order(request: Request) -> Response:
    try:
        detail = api.order_detail(sandbox(request), request.path_params["order_id"])
    except ActionError as exc:
        return page(request, "message.html", title="Not found", message=exc.message)
    return page(request, "order.html", order=detail)


async def products(request: Request) -> Response:
    q = request.query_params.get("q", "")
    n = max(0, int(num(request.query_params.get("page"), 0)))
    with sandbox(request).store.read() as db:
        rows = store.product_list(db, q=q, limit=PAGE + 1, offset=n * PAGE, full=True)
    return page(request, "products.html", rows=rows[:PAGE], q=q, page_no=n, more=len(rows) > PAGE)


async def stock(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        doc = {"aggregates": store.aggregates(db), "sources": store.sources(db),
               "inventory": store.inventory_list(db, limit=500)}
    return page(request, "stock.html", **doc)


async def returns(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        rows = store.rma_list(db, limit=500)
    return page(request, "returns.html", rows=rows)


async def registrations(request: Request) -> Response:
    with sandbox(request).store.read() as db:
        rows = store.integration_details(db)
    return page(request, "registrations.html", rows=rows)


async def journal(request: Request) -> Response:
    q = request.query_params
    with sandbox(request).store.read() as db:
        rows = store.journal_list(db, method=q.get("method") or None, direction=q.get("direction") or None,
                                  status=q.get("status") or None, limit=200)
    return page(request, "journal.html", rows=rows, method=q.get("method", ""), direction=q.get("direction", ""),
                status=q.get("status", ""))


async def faults(request: Request) -> Response:
    sb = sandbox(request)
    return page(request, "faults.html", faults=sb.faults.snapshot(), can_go_down=sb.listener is not None,
                active_tokens=sb.tokens.active())


# --- forms --------------------------------------------------------------------------------
async def do_ship(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.ship(sb, request.path_params["order_id"], _lines_from_form(form),
                                carrier=_f(form, "carrier", "DHL") or "DHL",
                                tracking_number=_f(form, "tracking_number") or None)
    return summary(f"Shipment {result['shipment_id']} sent, order {result['order_status']}", result)


async def do_cancel(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.cancel_lines(sb, request.path_params["order_id"], _lines_from_form(form),
                                        reason=_f(form, "reason", "CUSTOMERREQ") or "CUSTOMERREQ")
    return summary(f"Lines cancelled, order {result['order_status']}", result)


async def do_status(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.set_status(sb, request.path_params["order_id"], _f(form, "status"), _f(form, "reason"))
    return summary(f"Status set to {result['order_status']}", result)


async def do_shipping_details(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.request_shipping_details(sb, request.path_params["order_id"],
                                                    carrier=_f(form, "carrier", "DHL") or "DHL")
    if result["packages"] is None:
        return f"Shipping details not recorded: {result['error']}", "error"
    return f"Shipping details recorded ({len(result['packages'])} packages)", "ok"


async def do_request_shipment(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.request_shipment(sb, request.path_params["order_id"], source_id=_f(form, "source_id") or None)
    return summary(f"Shipment request {result['request_id']} sent", result)


async def do_snapshot(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    raw = _f(form, "items")
    result = await actions.stock_snapshot(sb, _f(form, "aggregate", "default"), _f(form, "mode", "FULL"),
                                          _items_from_text(raw) if raw else None, _f(form, "created_on") or None)
    return summary(f"Snapshot of {result['skus']} SKUs in {result['messages']} message(s)", result)


async def do_inventory(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = actions.set_inventory(sb, _f(form, "source", "WH1"), _items_from_text(_f(form, "items")))
    return f"{result['items']} inventory rows set for {result['source_id']}", "ok"


async def do_aggregate(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = actions.put_aggregate(sb, _f(form, "id"), _f(form, "name"))
    return f"Aggregate {result['id']} saved", "ok"


async def do_source(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    ids = [a.strip() for a in _f(form, "aggregate_ids", "default").split(",") if a.strip()]
    result = actions.put_source(sb, _f(form, "id"), _f(form, "name"), ids)
    return f"Source {result['id']} saved", "ok"


async def do_approve(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    return summary(f"Return {request.path_params['rma']} approved",
                   await actions.decide_return(sb, request.path_params["rma"], "APPROVED"))


async def do_reject(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    return summary(f"Return {request.path_params['rma']} rejected",
                   await actions.decide_return(sb, request.path_params["rma"], "REJECTED"))


async def do_refund(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    result = await actions.refund(sb, request.path_params["rma"], _f(form, "status", "RELEASED") or "RELEASED")
    return summary(f"Refund {result['credit_note_number']} ({result['status']}) sent", result)


async def do_redeliver(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    return summary("Redelivered", await actions.redeliver(sb, int(request.path_params["entry_id"])))


async def do_faults(sb: Sandbox, request: Request, form: FormData) -> tuple[str, str]:
    body: dict[str, Any] = {"fail_next": int(num(_f(form, "fail_next"), 0)), "mode": _f(form, "mode", "http_503"),
                            "latency_ms": int(num(_f(form, "latency_ms"), 0)),
                            "expire_tokens": bool(form.get("expire_tokens")),
                            "malformed_next": int(num(_f(form, "malformed_next"), 0))}
    if form.get("down"):
        body.update(down=True, down_seconds=max(1.0, num(_f(form, "down_seconds"), 10)))
    result = await api.apply_faults(sb, body)
    message = "Fault switches saved"
    if result["expired_tokens"]:
        message += f"; {result['expired_tokens']} tokens expired"
    if body.get("down"):
        message += f"; listener down for {body['down_seconds']:g} s"
    return message, "ok"


def routes() -> list[BaseRoute]:
    p = "/_sandbox"
    return [
        Route(p + "/", dashboard), Route(p + "/orders", orders), Route(p + "/orders/{order_id}", order),
        Route(p + "/products", products), Route(p + "/stock", stock), Route(p + "/returns", returns),
        Route(p + "/registrations", registrations), Route(p + "/journal", journal), Route(p + "/faults", faults),
        form_route(p + "/orders/{order_id}/ship", p + "/orders/{order_id}", do_ship),
        form_route(p + "/orders/{order_id}/cancel", p + "/orders/{order_id}", do_cancel),
        form_route(p + "/orders/{order_id}/status", p + "/orders/{order_id}", do_status),
        form_route(p + "/orders/{order_id}/shipping-details", p + "/orders/{order_id}", do_shipping_details),
        form_route(p + "/orders/{order_id}/request-shipment", p + "/orders/{order_id}", do_request_shipment),
        form_route(p + "/stock/snapshot", p + "/stock", do_snapshot),
        form_route(p + "/stock/inventory", p + "/stock", do_inventory),
        form_route(p + "/stock/aggregates", p + "/stock", do_aggregate),
        form_route(p + "/stock/sources", p + "/stock", do_source),
        form_route(p + "/returns/{rma}/approve", p + "/returns", do_approve),
        form_route(p + "/returns/{rma}/reject", p + "/returns", do_reject),
        form_route(p + "/returns/{rma}/refund", p + "/returns", do_refund),
        form_route(p + "/journal/{entry_id:int}/redeliver", p + "/journal", do_redeliver),
        form_route(p + "/faults", p + "/faults", do_faults),
    ]
