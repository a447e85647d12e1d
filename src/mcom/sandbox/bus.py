"""The bus side: OAuth2 tokens, JSON-RPC envelope parsing and the method registry."""

from __future__ import annotations

import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcom.sandbox.protocol import INVALID_REQUEST, PARSE_ERROR, RpcError


class TokenIssuer:
    """Client-credentials tokens kept in memory, each valid for ``ttl`` seconds."""

    def __init__(self, client_id: str, client_secret: str, ttl: int) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.ttl = ttl
        self.required = True  # False: calls need no bearer token (a development bus without OAuth)
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_client(self, client_id: str, client_secret: str) -> bool:
        ok_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        return ok_id and ok_secret

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.ttl
        return token

    def valid(self, token: str) -> bool:
        expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count

    def active(self) -> int:
        now = time.monotonic()
        return sum(1 for exp in list(self._tokens.values()) if exp > now)


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True, slots=True)
class Call:
    """A parsed JSON-RPC request."""

    id: Any
    method: str
    params: Any


def parse_call(body: bytes) -> Call:
    """Parse one JSON-RPC request; raises :class:`RpcError` (-32700/-32600).

    Lenient as the protocol asks (§2): ``jsonrpc`` may be missing, unknown members are
    ignored; ``params`` is checked by the handler (must be an object, else -32602).
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RpcError(PARSE_ERROR, f"Parse error: {exc}") from None
    if isinstance(doc, list):
        raise RpcError(INVALID_REQUEST, "Invalid Request: batch requests are not supported")
    if not isinstance(doc, dict):
        raise RpcError(INVALID_REQUEST, "Invalid Request: the request must be a JSON object")
    if "jsonrpc" in doc and doc["jsonrpc"] != "2.0":
        raise RpcError(INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"")
    method = doc.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "Invalid Request: method must be a non-empty string")
    call_id = doc.get("id")
    if call_id is not None and not isinstance(call_id, str | int | float):
        raise RpcError(INVALID_REQUEST, "Invalid Request: id must be a string or a number")
    return Call(call_id, method, doc.get("params", {}))


def request_id(body: bytes) -> Any:
    """Best-effort id of a request that failed parsing (for the error answer)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return doc.get("id") if isinstance(doc, dict) else None


def success(call_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": result}


def failure(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}


@dataclass
class Outcome:
    """What a handler returns: the result, plus messages to deliver after the answer is sent."""

    result: Any
    deliver_after: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    note: str = ""


Handler = Callable[[sqlite3.Connection, dict[str, Any]], Outcome]


class MethodRegistry:
    """Method name → handler; registering the same name twice raises."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, method: str, handler: Handler) -> None:
        if method in self._handlers:
            raise ValueError(f"handler for {method} already registered")
        self._handlers[method] = handler

    def get(self, method: str) -> Handler | None:
        return self._handlers.get(method)

    def methods(self) -> list[str]:
        return sorted(self._handlers)
