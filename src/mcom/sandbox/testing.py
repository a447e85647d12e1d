"""Run the sandbox in a background thread for tests, and drive it over HTTP.

    with SandboxServer(tmp_path) as oms:
        oms.url, oms.oauth_url          # "http://127.0.0.1:PORT/"
        oms.api.ship("000000001")       # JSON test API over HTTP
        oms.down(); oms.up()            # really close / reopen the listening socket
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from mcom.sandbox.server import SandboxUvicorn, build_server, create_app


class SandboxError(Exception):
    """The sandbox's test API answered with an error."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class SandboxApi:
    """Helpers over the ``/_sandbox/api/`` JSON API."""

    def __init__(self, base_url: str, server: SandboxServer | None = None) -> None:
        self.base_url = base_url
        self._server = server
        self._http = httpx.Client(base_url=base_url + "_sandbox/api", timeout=60.0)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        doc = response.json() if response.content else None
        if response.is_error:
            raise SandboxError(response.status_code, doc)
        return doc

    # orders
    def orders(self, q: str = "", limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        return list(self._call("GET", "/orders", params={"q": q, "limit": limit, "offset": offset}))

    def order(self, order_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/orders/{order_id}"))

    def ship(self, order_id: str, lines: Any = None, carrier: str = "DHL", tracking: str | None = None,
             tracking_link: str = "", source_id: str | None = None) -> dict[str, Any]:
        """``lines``: None (all open), ``["line-id", ...]``, ``[{"id":..., "quantity":...}]`` or ``{id: qty}``."""
        return dict(self._call("POST", f"/orders/{order_id}/ship", {
            "lines": lines, "carrier": carrier, "tracking_number": tracking, "tracking_link": tracking_link,
            "source_id": source_id}))

    def cancel_lines(self, order_id: str, lines: Any = None, reason: str = "CUSTOMERREQ") -> dict[str, Any]:
        return dict(self._call("POST", f"/orders/{order_id}/cancel", {"lines": lines, "reason": reason}))

    def set_status(self, order_id: str, status: str, reason: str = "") -> dict[str, Any]:
        return dict(self._call("POST", f"/orders/{order_id}/status", {"status": status, "reason": reason}))

    def request_shipping_details(self, order_id: str, lines: Any = None, carrier: str = "DHL") -> dict[str, Any]:
        return dict(self._call("POST", f"/orders/{order_id}/shipping-details", {"lines": lines, "carrier": carrier}))

    def request_shipment(self, order_id: str, lines: Any = None, source_id: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", f"/orders/{order_id}/request-shipment",
                               {"lines": lines, "source_id": source_id}))

    # catalog and stock
    def products(self, q: str = "", limit: int = 1000, offset: int = 0, full: bool = False) -> list[dict[str, Any]]:
        return list(self._call("GET", "/products", params={"q": q, "limit": limit, "offset": offset,
                                                           "full": "1" if full else ""}))

    def product(self, sku: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/products/{sku}"))

    def stock(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stock"))

    def stock_snapshot(self, aggregate: str, mode: str = "FULL", items: list[dict[str, Any]] | None = None,
                       created_on: str | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/stock/snapshot", {"aggregate": aggregate, "mode": mode, "items": items,
                                                           "created_on": created_on}))

    def set_inventory(self, source: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(self._call("POST", "/stock/inventory", {"source": source, "items": items}))

    def add_aggregate(self, aggregate_id: str, name: str = "") -> dict[str, Any]:
        return dict(self._call("POST", "/stock/aggregates", {"id": aggregate_id, "name": name}))

    def add_source(self, source_id: str, name: str = "", aggregate_ids: list[str] | None = None,
                   address: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self._call("POST", "/stock/sources", {"id": source_id, "name": name,
                                                          "aggregate_ids": aggregate_ids, "address": address}))

    # returns
    def returns(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/returns"))

    def approve_return(self, rma: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/returns/{rma}/approve"))

    def reject_return(self, rma: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/returns/{rma}/reject"))

    def refund(self, rma: str, status: str = "RELEASED") -> dict[str, Any]:
        return dict(self._call("POST", f"/returns/{rma}/refund", {"status": status}))

    # bus, journal, faults
    def registrations(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/registrations"))

    def journal(self, method: str | None = None, direction: str | None = None, status: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
        """Newest first."""
        params = {k: v for k, v in {"method": method, "direction": direction, "status": status}.items() if v}
        return list(self._call("GET", "/journal", params={**params, "limit": limit}))

    def redeliver(self, journal_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/journal/{journal_id}/redeliver"))

    def state(self) -> dict[str, Any]:
        return dict(self._call("GET", "/state"))

    def faults(self, *, fail_next: int | None = None, mode: str | None = None, latency_ms: int | None = None,
               expire_tokens: bool = False, reset: bool = False, malformed_next: int | None = None) -> dict[str, Any]:
        """Set fault switches (``mode``: ``http_503`` or ``rpc_error``); returns the current switches."""
        body: dict[str, Any] = {"fail_next": fail_next, "mode": mode, "latency_ms": latency_ms,
                                "expire_tokens": expire_tokens, "reset": reset, "malformed_next": malformed_next}
        return dict(self._call("POST", "/faults", {k: v for k, v in body.items() if v is not None}))

    def down(self, seconds: float | None = None) -> None:
        """Stop listening; with ``seconds`` the sandbox comes back up by itself."""
        if seconds is not None or self._server is None:
            self._call("POST", "/faults", {"down": True, "down_seconds": seconds or 0})
        else:
            self._server.down()

    def up(self) -> None:
        if self._server is None:
            raise RuntimeError("up() needs the SandboxServer (the sandbox cannot be reached while down)")
        self._server.up()


class SandboxServer:
    """Context manager: a real sandbox on a free loopback port, served from a background thread."""

    def __init__(self, tmp_path: str | PathLike[str], client_id: str = "mcom",
                 client_secret: str = "sandbox-secret", token_ttl: int = 3600,  # noqa: S107
                 host: str = "127.0.0.1", port: int | None = None, require_token: bool = True) -> None:
        self.db_path = str(Path(tmp_path) / "sandbox.sqlite3")
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        # Bound now (port 0 = a free one) and handed to uvicorn: no window for another process to take it.
        self._socket = socket.create_server((host, port or 0))
        self.port = int(self._socket.getsockname()[1])
        self.app = create_app(self.db_path, client_id, client_secret, token_ttl, require_token=require_token)
        self._server: SandboxUvicorn = build_server(self.app, host, self.port, log_level="warning",
                                                    access_log=False)
        self._thread: threading.Thread | None = None
        self.url = f"http://{host}:{self.port}/"
        self.oauth_url = self.url
        self.api = SandboxApi(self.url, self)

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="mcom-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.api.close()
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None
        self._socket.close()
        self.app.state.sandbox.store.close()

    def _on_loop(self, coro: Any) -> None:
        loop = self._server.loop
        assert loop is not None, "server not started"
        asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    def down(self) -> None:
        """Really stop listening: new connections are refused until :meth:`up`."""
        self.app.state.sandbox.faults.set_down(True)
        self._on_loop(self._server.go_down())

    def up(self) -> None:
        self._on_loop(self._server.go_up())
        self.app.state.sandbox.faults.set_down(False)

    def token(self) -> str:
        """A fresh bearer token (convenience for tests)."""
        response = httpx.post(self.oauth_url + "oauth/token", data={
            "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret})
        response.raise_for_status()
        return str(response.json()["access_token"])

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
