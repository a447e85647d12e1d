"""Bus endpoints: ``POST /oauth/token`` and the JSON-RPC paths (``/``, ``/remote/oms``, ...).

The JSON-RPC path is kept lean: one transaction per call (handler + journal row), no
per-request setup; messages a handler wants delivered go out after the answer is sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import sqlite3
from typing import Any
from urllib.parse import unquote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mcom.sandbox import store
from mcom.sandbox.actions import Sandbox
from mcom.sandbox.bus import Call, failure, parse_call, request_id, success
from mcom.sandbox.protocol import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    REGISTER,
    SERVER_ERROR,
    UNAUTHORIZED,
    RpcError,
    dumps,
)

log = logging.getLogger("mcom.sandbox")

JSON = "application/json"


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(doc).encode("utf-8"), status_code=status, media_type=JSON, headers=headers)


def sandbox(request: Request) -> Sandbox:
    sb: Sandbox = request.app.state.sandbox
    return sb


# --- OAuth2 -------------------------------------------------------------------------------
def _oauth_error(error: str, description: str, status: int, basic: bool = False) -> Response:
    headers = {"Cache-Control": "no-store"}
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="mcom-sandbox"'
    return json_response({"error": error, "error_description": description}, status, headers)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


async def token(request: Request) -> Response:
    """RFC 6749 client-credentials grant; form-encoded body or HTTP Basic client auth."""
    sb = sandbox(request)
    if sb.faults.latency_s:
        await asyncio.sleep(sb.faults.latency_s)
    fields: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith(JSON):
        try:
            doc = json.loads(await request.body())
        except ValueError:
            return _oauth_error("invalid_request", "the body is not valid JSON", 400)
        if isinstance(doc, dict):
            fields = {k: str(v) for k, v in doc.items() if isinstance(v, str | int)}
    else:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    grant = fields.get("grant_type")
    if not grant:
        return _oauth_error("invalid_request", "grant_type is required", 400)
    if grant != "client_credentials":
        return _oauth_error("unsupported_grant_type", f"grant_type {grant!r} is not supported", 400)
    basic = _basic_credentials(request.headers.get("authorization"))
    client_id, secret = basic if basic else (fields.get("client_id", ""), fields.get("client_secret", ""))
    if not client_id or not sb.tokens.check_client(client_id, secret):
        return _oauth_error("invalid_client", "client authentication failed", 401, basic=basic is not None)
    return json_response(
        {"access_token": sb.tokens.issue(), "token_type": "Bearer", "expires_in": sb.tokens.ttl},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# --- JSON-RPC -----------------------------------------------------------------------------
def _logged_body(body: bytes, call: Call | None) -> str:
    """The request as journaled: verbatim, except a registration's secret."""
    if call is not None and call.method == REGISTER and isinstance(call.params, dict) and "secret" in call.params:
        try:
            doc = json.loads(body)
            doc["params"]["secret"] = "***"
            return dumps(doc)
        except (ValueError, TypeError, KeyError):
            return ""
    return body.decode("utf-8", "replace")


def _journal_in(sb: Sandbox, body: bytes, call: Call | None, status: str, error: str = "",
                http_status: int = 200, note: str = "") -> None:
    with sb.store.tx() as db:
        store.journal_add(db, direction="incoming", method=call.method if call else "", counterpart="oms",
                          message_id="" if call is None or call.id is None else str(call.id),
                          payload=_logged_body(body, call), status=status, error=error, note=note,
                          http_status=http_status)


def _guess_call(body: bytes) -> Call | None:
    try:
        return parse_call(body)
    except RpcError:
        return None


async def rpc(request: Request) -> Response:
    """Every JSON-RPC path: bearer check, faults, then dispatch on ``method``."""
    sb = sandbox(request)
    if sb.faults.latency_s:
        await asyncio.sleep(sb.faults.latency_s)
    body = await request.body()
    auth = request.headers.get("authorization", "")
    scheme, _, tok = auth.partition(" ")
    if sb.tokens.required and (scheme.lower() != "bearer" or not sb.tokens.valid(tok.strip())):
        _journal_in(sb, body, _guess_call(body), "ERROR", "invalid or expired token", 401)
        return json_response(failure(request_id(body), UNAUTHORIZED, "invalid or expired token"), 401,
                             {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    fail = sb.faults.take_failure()
    if fail is not None:
        status = 503 if fail == "http_503" else 200
        _journal_in(sb, body, _guess_call(body), "ERROR", f"simulated failure ({fail})", status)
        return json_response(failure(request_id(body), SERVER_ERROR, "simulated failure"), status)
    try:
        call = parse_call(body)
    except RpcError as exc:
        _journal_in(sb, body, None, "ERROR", exc.message)
        return json_response(failure(request_id(body), exc.code, exc.message))
    handler = sb.methods.get(call.method)
    try:
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {call.method}")
        if not isinstance(call.params, dict):
            raise RpcError(INVALID_PARAMS, "Invalid params: params must be an object")
        with sb.store.tx() as db:
            outcome = handler(db, call.params)
            store.journal_add(db, direction="incoming", method=call.method, counterpart="oms",
                              message_id="" if call.id is None else str(call.id),
                              payload=_logged_body(body, call), status="SUCCESS", note=outcome.note,
                              http_status=200)
    except RpcError as exc:
        _journal_in(sb, body, call, "ERROR", exc.message)
        return json_response(failure(call.id, exc.code, exc.message))
    except sqlite3.Error as exc:
        log.error("storage error while handling %s: %s", call.method, exc)
        _journal_in(sb, body, call, "ERROR", f"storage error: {exc}", 500)
        return json_response(failure(call.id, SERVER_ERROR, "storage error"), 500)
    response = json_response(success(call.id, outcome.result))
    if outcome.deliver_after:
        response.background = BackgroundTask(_spawn_deliveries, sb, outcome.deliver_after)
    return response


async def _spawn_deliveries(sb: Sandbox, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Start the deliveries in their own task so the connection is free at once."""
    task = asyncio.create_task(_deliver_all(sb, messages))
    sb.background.add(task)
    task.add_done_callback(sb.background.discard)


async def _deliver_all(sb: Sandbox, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for method, params in messages:
        await sb.deliverer.deliver(method, params)


def routes() -> list[BaseRoute]:
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/", rpc, methods=["POST"]),
        Route("/remote/{service}", rpc, methods=["POST"]),
        Route("/delegate/{service}", rpc, methods=["POST"]),
        Route("/events", rpc, methods=["POST"]),
    ]
