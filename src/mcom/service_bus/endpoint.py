"""The inbound endpoint ``POST /mcom/service-bus`` (oms-protocol.md §5, §10, §12 #8-#11, #23).

Order of checks, each answered at once:

1. ``X-Signature`` over the raw body, constant time (unless ``secure_endpoint = false``)
   → HTTP 401 + JSON-RPC error -32001; nothing is stored, the attempt is logged. The served
   path computes the HMAC while the body streams in, refuses a request without the header
   before reading its body, and bounds body size (413), read time (408) and bodies in flight
   (503) — see :mod:`mcom.service_bus.ingest`.
2. Body is UTF-8 JSON → else HTTP 400 + -32700. Envelope is an object with a string
   ``method`` and a string/number id (``jsonrpc`` may be missing, extra members are ignored)
   → else HTTP 400 + -32600 (a peer bug: the same bytes can never succeed). What no column
   can hold (:mod:`mcom.jsonguard`: NUL, lone surrogates, ``NaN``/``1e400``, nesting deeper
   than 64) is refused here with its path, so it never reaches the group-commit writer and
   never fails the deliveries committed with it: in ``params`` HTTP 200 + -32602, elsewhere
   HTTP 400 + -32600. Ids are echoed only when they are valid JSON (else ``null``).
3. The integration is enabled and ``method`` is routed (registered by an enabled module) → else
   HTTP 200 + -32601 (logged).
4. ``params`` is an object → else HTTP 200 + -32602; a payload dated before the replay window
   (:mod:`mcom.service_bus.replay`) → HTTP 200 + -32602.
5. Store the message (direction ``in``, status ``new``) and answer ``{"result": {}}``; a
   re-delivery of the same id (same body) is acknowledged without a second row. If the message
   cannot be stored: HTTP 503 (the bus may retry). Routes registered with
   ``synchronous_answer=True`` (carrier shipping details) are handled at once and their
   handler's answer is the ``result``.

:func:`evaluate` does steps 1-4 without touching the database; it is shared by the fast ASGI
path (:mod:`mcom.service_bus.ingest`, what ``mcom serve`` serves) and the Django view
:func:`service_bus_view` (same behaviour, ORM storage).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from mcom import envconfig, jsonguard
from mcom.service_bus import events, integration, registry, replay, signing
from mcom.service_bus.rows import InboundRow

log = logging.getLogger("mcom.service_bus.endpoint")

PATH = "/mcom/service-bus"

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
UNAUTHORIZED = -32001
UNAVAILABLE = -32002

MAX_MESSAGE_ID = 64

JSON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)
OPTIONS_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-magento-service-bus", b"*"),
    (b"allow", b"POST, OPTIONS"),
    (b"content-type", b"application/json"),
)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = JSON_HEADERS


@dataclass(frozen=True)
class Accepted:
    """A valid delivery: store ``row`` and acknowledge ``request_id``."""

    request_id: Any
    row: InboundRow
    route: registry.InboundRoute
    params: dict[str, Any]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def echo_id(raw_id: Any) -> Any:
    """``raw_id`` when it can be echoed as valid JSON (finite number, storable string), else None."""
    if isinstance(raw_id, bool) or raw_id is None:
        return None
    if isinstance(raw_id, int):
        return raw_id
    if isinstance(raw_id, float):
        return raw_id if math.isfinite(raw_id) else None
    if isinstance(raw_id, str) and jsonguard.bad_string(raw_id) is None:
        return raw_id
    return None


def rpc_error(status: int, code: int, message: str, request_id: Any = None) -> Reply:
    doc = {"jsonrpc": "2.0", "id": echo_id(request_id), "error": {"code": code, "message": message}}
    return Reply(status, _json(doc))


def rpc_result(request_id: Any, result: Any) -> Reply:
    return Reply(200, _json({"jsonrpc": "2.0", "id": echo_id(request_id), "result": result}))


def ack(request_id: Any) -> Reply:
    """The immediate acknowledgement of a stored delivery."""
    return rpc_result(request_id, {})


def options_reply() -> Reply:
    return Reply(200, b"{}", OPTIONS_HEADERS)


def unavailable(request_id: Any = None) -> Reply:
    return rpc_error(503, UNAVAILABLE, "the message could not be stored; deliver it again later", request_id)


def message_id_for(raw_id: Any, body: bytes) -> str:
    """The log's ``message_id`` for a request id (a body hash when the id is missing/null)."""
    if raw_id is None:
        return "sha1:" + hashlib.sha1(body).hexdigest()  # noqa: S324 - identity, not security
    text = str(raw_id)
    if len(text) > MAX_MESSAGE_ID:
        return "id-sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324
    return text


def _reject(reason: str, peer: str, size: int) -> None:
    log.warning("inbound delivery rejected: %s (%d bytes from %s)", reason, size, peer or "?")
    events.ingest_rejected(reason)


def unsigned_refusal(peer: str, size: int) -> Reply | None:
    """The 401 for a request to a secure endpoint that cannot be verified, or None when it can."""
    sb = envconfig.current().service_bus
    if not sb.secure_endpoint:
        return None
    if not sb.secret.get_secret_value():
        _reject("service_bus.secret is not configured, cannot verify X-Signature", peer, size)
        return rpc_error(401, UNAUTHORIZED, "signature cannot be verified")
    return None


def _refused(e: jsonguard.Refused, envelope: Any, peer: str, size: int) -> Reply:
    _reject(f"unstorable value: {e}", peer, size)
    raw_id = envelope.get("id") if isinstance(envelope, dict) and e.path[:1] != ("id",) else None
    if e.path[:1] == ("params",):
        return rpc_error(200, INVALID_PARAMS, f"Invalid params: {e}", raw_id)
    return rpc_error(400, INVALID_REQUEST, f"Invalid Request: {e}", raw_id)


def evaluate(
    body: bytes, signature: str | bytes | None, *, peer: str = "", verified: bool | None = None
) -> Reply | Accepted:
    """Check a delivery (signature, JSON, envelope, route, params) without storing anything.

    ``verified`` is the outcome of a signature check already made while the body streamed in
    (:class:`~mcom.service_bus.signing.Verifier`); None checks ``signature`` here.
    """
    sb = envconfig.current().service_bus
    if sb.secure_endpoint:
        refusal = unsigned_refusal(peer, len(body))
        if refusal is not None:
            return refusal
        if verified is None:
            verified = signing.verify(sb.secret.get_secret_value(), body, signature)
        if not verified:
            _reject("missing X-Signature" if not signature else "invalid X-Signature", peer, len(body))
            return rpc_error(401, UNAUTHORIZED, "missing or invalid X-Signature")
    try:
        text = body.decode("utf-8")
        envelope = jsonguard.loads(text)
    except jsonguard.Refused as e:
        return _refused(e, e.document, peer, len(body))
    except (UnicodeDecodeError, ValueError):
        _reject("malformed JSON", peer, len(body))
        return rpc_error(400, PARSE_ERROR, "Parse error")
    if not isinstance(envelope, dict):
        _reject("not a JSON-RPC request object (batches are not supported)", peer, len(body))
        return rpc_error(400, INVALID_REQUEST, "Invalid Request: expected one JSON-RPC request object")
    raw_id = envelope.get("id")
    method = envelope.get("method")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int, float))):
        _reject("invalid id", peer, len(body))
        return rpc_error(400, INVALID_REQUEST, "Invalid Request: id must be a string or a number")
    if not isinstance(method, str) or not method:
        _reject("no method", peer, len(body))
        return rpc_error(400, INVALID_REQUEST, "Invalid Request: method must be a non-empty string", raw_id)
    if "jsonrpc" in envelope and envelope["jsonrpc"] != "2.0":
        _reject("jsonrpc is not 2.0", peer, len(body))
        return rpc_error(400, INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"', raw_id)
    if not integration.enabled():  # MCOM > Integration > Disable: every method is a disabled one
        _reject(f"integration disabled, {method[:128]} refused", peer, len(body))
        return rpc_error(200, METHOD_NOT_FOUND, f"Method not found: {method[:128]} (integration disabled)", raw_id)
    route = registry.inbound_route(method)
    if route is None:
        _reject(f"method {method[:128]} is not handled (unknown or its module is disabled)", peer, len(body))
        return rpc_error(200, METHOD_NOT_FOUND, f"Method not found: {method[:128]}", raw_id)
    params = envelope.get("params", {})
    if not isinstance(params, dict):
        _reject(f"{method}: params is not an object", peer, len(body))
        return rpc_error(200, INVALID_PARAMS, "Invalid params: params must be an object", raw_id)
    stale = replay.too_old(params)
    if stale:
        _reject(f"{method}: {stale}", peer, len(body))
        return rpc_error(200, INVALID_PARAMS, f"Invalid params: {stale}", raw_id)
    message_id = message_id_for(raw_id, body)
    row = InboundRow(method, message_id, registry.entity_key_for(route, params, message_id), text)
    return Accepted(raw_id, row, route, params)


# ---------------------------------------------------------------------------- Django view


def _to_response(reply: Reply) -> HttpResponse:
    resp = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        resp[name.decode("latin-1")] = value.decode("latin-1")
    return resp


def handle_sync(accepted: Accepted) -> Reply:
    """Store ``accepted`` (ORM) and acknowledge, or answer it at once for synchronous routes."""
    from mcom.service_bus import inbox

    try:
        if accepted.route.synchronous_answer:
            outcome = inbox.answer_synchronously(accepted.row, accepted.route, accepted.params)
            if outcome.ok:
                return rpc_result(accepted.request_id, outcome.result)
            return rpc_error(200, SERVER_ERROR, outcome.error[:500], accepted.request_id)
        inbox.persist(accepted.row)
    except DatabaseError as e:
        log.error("inbound %s %s not stored: %s", accepted.row.topic, accepted.row.message_id, type(e).__name__)
        return unavailable(accepted.request_id)
    return ack(accepted.request_id)


@csrf_exempt
def service_bus_view(request: HttpRequest) -> HttpResponse:
    """Django implementation of the endpoint (the served path is the ASGI fast path in ``ingest``)."""
    if request.method == "OPTIONS":
        return _to_response(options_reply())
    if request.method != "POST":
        resp = _to_response(rpc_error(405, INVALID_REQUEST, "use POST"))
        resp["Allow"] = "POST, OPTIONS"
        return resp
    outcome = evaluate(request.body, request.headers.get(signing.HEADER), peer=request.META.get("REMOTE_ADDR", ""))
    if isinstance(outcome, Reply):
        return _to_response(outcome)
    return _to_response(handle_sync(outcome))
