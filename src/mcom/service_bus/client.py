"""The JSON-RPC 2.0 client for connector → bus/OMS calls (oms-protocol.md §2, §3, §7, §12).

One :class:`OmsClient` per process (:func:`get_client`), on a keep-alive ``httpx.Client`` with
the configured connect/read timeouts and OAuth2 (:mod:`mcom.service_bus.oauth`). Requests carry
a UUID4 string id (or the message-log id of an outbound row), ``params`` is always an object,
never a batch; with ``sign_requests`` the body is signed like deliveries (``X-Signature``).

Paths by communication kind (config keys in ``[service_bus]``):

=========== ======================= =====================================================
kind        path                    use
=========== ======================= =====================================================
``bus``     ``register_path`` (``""`` = the URL root)  register / unregister
``remote``  ``remote_path``         synchronous query, the OMS result is returned
``delegate````delegate_path``       asynchronous command, the bus acknowledges
``event``   ``events_path``         event / broadcast
=========== ======================= =====================================================

Leniency (§2): a result of ``[]``/``{}``/``null`` is success without data; ``"error": ""`` is no
error; a parseable 2xx body that is no JSON-RPC envelope is returned as the result; HTTP 404 means
"method not routed". An empty or unparseable 2xx body is an *unknown outcome*, never a success.
Failures raise the tree in :mod:`mcom.service_bus.errors` (``OmsError`` and subclasses, each
naming the method); :func:`interpret` holds the one table that classifies answers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from mcom import envconfig, instance
from mcom.service_bus import signing
from mcom.service_bus.errors import (
    OmsAuthError,
    OmsError,
    OmsMethodNotRouted,
    OmsRejected,
    OmsRpcError,
    OmsUnavailable,
    OmsUnknownOutcome,
    names_missing_handler,
)
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.oauth import ClientCredentialsAuth, TokenFileCache, cache_file_for

__all__ = [
    "OmsAuthError",
    "OmsClient",
    "OmsError",
    "OmsMethodNotRouted",
    "OmsRejected",
    "OmsRpcError",
    "OmsUnavailable",
    "OmsUnknownOutcome",
    "get_client",
    "reset_client",
]

log = logging.getLogger("mcom.service_bus.client")

USER_AGENT = "mcom-connector"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def _error_text(err: Any) -> tuple[int, str, Any]:
    if isinstance(err, Mapping):
        code = err.get("code")
        try:
            icode = int(code) if code is not None else -32000
        except (TypeError, ValueError):
            icode = -32000
        return icode, str(err.get("message") or err.get("error_message") or "error"), err.get("data")
    return -32000, str(err), None


def _rpc_error(method: str, err: Any, status: int) -> OmsRpcError:
    code, message, extra = _error_text(err)
    if code == -32601 or (-32099 <= code <= -32000 and names_missing_handler(message)):
        return OmsMethodNotRouted(method, f"JSON-RPC error {code}: {message}")
    error = OmsRpcError(method, code, message, extra)
    if 400 <= status < 500:
        error.retryable = False  # a 4xx answer (401/408/429 are handled before) is a refusal
    return error


def interpret(method: str, response: httpx.Response) -> Any:
    """Turn an HTTP answer into the call's result or raise the matching ``OmsError``.

    The one table that classifies OMS answers (first match wins):

    ======================================================== ==================== =============
    answer                                                   error                 outcome
    ======================================================== ==================== =============
    HTTP 404                                                 OmsMethodNotRouted    permanent
    HTTP 401 (after one token refresh)                       OmsAuthError          transient
    HTTP 408, 429, 5xx                                       OmsUnavailable        transient
    JSON-RPC error -32601, or -32000…-32099 "handler not     OmsMethodNotRouted    permanent
    found"-like
    JSON-RPC error -32700/-32600/-32602                      OmsRpcError           permanent
    JSON-RPC error in any other HTTP 4xx answer              OmsRpcError           permanent
    other JSON-RPC error codes (HTTP 2xx)                    OmsRpcError           transient
    other HTTP 4xx                                           OmsRejected           permanent
    2xx envelope with ``result`` (``[]``/``{}``/``null``     —                     success
    included; ``"error": ""`` is no error)
    2xx parseable JSON that is no envelope (mom-mock's       —                     success
    ``/events`` answers ``[]``)
    2xx empty body, unparseable body, or an envelope         OmsUnknownOutcome     unknown
    (``jsonrpc`` member) with neither ``result`` nor
    ``error``
    ======================================================== ==================== =============

    Transport failures (connect, timeout) raise ``OmsUnavailable`` in :meth:`OmsClient.send`.
    """
    status = response.status_code
    body = response.content
    if status == 404:
        raise OmsMethodNotRouted(method, "the bus answered HTTP 404 (method not routed)")
    if status == 401:
        raise OmsAuthError(method, "the bus refused the access token (HTTP 401) after a token refresh")
    if status in (408, 429) or status >= 500:
        raise OmsUnavailable(method, f"the bus answered HTTP {status}")
    data: Any = None
    parsed = False
    if body.strip():
        try:
            data = json.loads(body)
            parsed = True
        except ValueError:
            parsed = False
    has_member = isinstance(data, dict) and ("result" in data or "error" in data)
    if has_member:
        err = data.get("error")
        if err not in (None, "", {}, []):
            raise _rpc_error(method, err, status)
    if status >= 400:
        raise OmsRejected(method, f"the bus answered HTTP {status}", status=status)
    if has_member:
        return data.get("result")
    if not parsed:
        what = "an empty body" if not body.strip() else f"a body that is not JSON ({len(body)} bytes)"
        raise OmsUnknownOutcome(method, f"HTTP {status} with {what}: unknown outcome, not recorded as delivered")
    if isinstance(data, dict) and "jsonrpc" in data:
        raise OmsUnknownOutcome(
            method, f"HTTP {status} with a JSON-RPC envelope without result or error: unknown outcome, "
                    "not recorded as delivered")
    return data


class OmsClient:
    """A JSON-RPC client bound to one ``ServiceBusConfig``. Thread-safe; reuse it (keep-alive)."""

    def __init__(self, config: envconfig.ServiceBusConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.pid = os.getpid()
        # auth = "none": a development bus without OAuth — no token request, no Authorization header.
        self.auth: ClientCredentialsAuth | None = None
        if config.auth == "oauth2":
            token_url = config.oauth_server_url + "oauth/token"
            self.auth = ClientCredentialsAuth(
                oauth_server_url=config.oauth_server_url,
                client_id=config.oauth_client_id,
                client_secret=config.oauth_client_secret.get_secret_value(),
                default_ttl=float(config.token_ttl),
                file_cache=TokenFileCache(cache_file_for(instance.var_dir(), token_url, config.oauth_client_id)),
            )
        self._secret = config.secret.get_secret_value()
        self.http = httpx.Client(
            base_url=config.url,
            auth=self.auth,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------------------ calls

    def path_for(self, kind: str) -> str:
        paths = {
            LoggedMessage.KIND_BUS: self.config.register_path,
            LoggedMessage.KIND_REMOTE: self.config.remote_path,
            LoggedMessage.KIND_DELEGATE: self.config.delegate_path,
            LoggedMessage.KIND_EVENT: self.config.events_path,
        }
        try:
            return paths[kind].lstrip("/")
        except KeyError:
            raise ValueError(f"unknown communication kind {kind!r}") from None

    def send(self, kind: str, method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> Any:
        """POST one JSON-RPC request on the path of ``kind``; returns the result (see module doc).

        Raises ``OmsError`` subclasses; ``ValueError`` when ``params`` is not a mapping.
        """
        if not isinstance(params, Mapping):
            raise ValueError(f"{method}: params must be an object, not {type(params).__name__}")
        envelope = {"jsonrpc": "2.0", "id": message_id or str(uuid.uuid4()), "method": method, "params": dict(params)}
        body = _dumps(envelope)
        headers = {"Content-Type": "application/json"}
        if self.config.sign_requests and self._secret:
            headers[signing.HEADER] = signing.sign(self._secret, body)
        try:
            response = self.http.post(self.path_for(kind), content=body, headers=headers)
        except httpx.TimeoutException as e:
            raise OmsUnavailable(method, f"timed out talking to {e.request.url.host} ({type(e).__name__})") from None
        except httpx.TransportError as e:
            host = e.request.url.host if _has_request(e) else "the bus"
            raise OmsUnavailable(method, f"cannot reach {host}: {type(e).__name__}") from None
        except httpx.HTTPError as e:  # decoding, redirects, …
            raise OmsUnavailable(method, f"HTTP failure: {type(e).__name__}") from None
        return interpret(method, response)

    def call(self, method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> Any:
        """Synchronous query (``remote``): waits for and returns the OMS result."""
        return self.send(LoggedMessage.KIND_REMOTE, method, params, message_id=message_id)

    def delegate(self, method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> Any:
        """Asynchronous command (``delegate``): the bus acknowledges, the OMS answers later by message."""
        return self.send(LoggedMessage.KIND_DELEGATE, method, params, message_id=message_id)

    def event(self, method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> Any:
        """Publish an event (``events``)."""
        return self.send(LoggedMessage.KIND_EVENT, method, params, message_id=message_id)

    def bus(self, method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> Any:
        """A bus-level call (register/unregister) on ``register_path``."""
        return self.send(LoggedMessage.KIND_BUS, method, params, message_id=message_id)


def _has_request(e: httpx.TransportError) -> bool:
    try:
        e.request  # noqa: B018 - property raises when unset
    except RuntimeError:
        return False
    return True


class _Holder:
    client: OmsClient | None = None
    transport: httpx.BaseTransport | None = None


_holder = _Holder()
_lock = threading.Lock()


def get_client() -> OmsClient:
    """The process's client for the current config (recreated when the config or pid changes).

    Raises ``envconfig.ConfigError`` (one line naming the key) when ``[service_bus]`` is incomplete.
    """
    cfg = envconfig.current().require_service_bus()
    with _lock:
        c = _holder.client
        if c is None or c.pid != os.getpid() or c.config != cfg:
            if c is not None and c.pid == os.getpid():
                c.close()
            c = _holder.client = OmsClient(cfg, transport=_holder.transport)
        return c


def reset_client(*, transport: httpx.BaseTransport | None = None) -> None:
    """Drop the process's client; the next :func:`get_client` builds a new one (with ``transport``)."""
    with _lock:
        if _holder.client is not None and _holder.client.pid == os.getpid():
            _holder.client.close()
        _holder.client = None
        _holder.transport = transport
