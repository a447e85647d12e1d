"""A small real HTTP bus/OMS for client tests (Starlette on loopback): OAuth token endpoint,
register root, ``remote/oms``, ``delegate/oms``, ``events``. Records every request."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcom.testing.live import ThreadedServer

CLIENT_ID = "mcom-client"
CLIENT_SECRET = "client-secret-never-printed"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeBus:
    """State + behaviour knobs of the fake bus; ``url`` is its base URL (trailing slash)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.expires_in: int | None = 3600
        self.token_status = 201
        # method -> (status, body bytes) ; default: 200 {"jsonrpc":"2.0","id":1,"result":[]}
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.server: ThreadedServer | None = None
        # cleared: every RPC waits until it is set again (a send that blocks); ``held`` tells one waits
        self.open = threading.Event()
        self.open.set()
        self.held = threading.Event()
        self.url = ""
        # concurrency probe: RPCs wait until ``gate`` of them were in the handler at once (then the
        # gate stays open) or ``gate_timeout`` seconds passed; ``max_inflight`` is the most seen at once
        self.gate = 0
        self.gate_timeout = 10.0
        self.inflight = 0
        self.max_inflight = 0
        self._arrived: asyncio.Condition | None = None

    # ------------------------------------------------------------------ app
    async def token(self, request: Request) -> Response:
        form = await request.form()
        body = dict((k, str(v)) for k, v in form.items())
        self.requests.append(Recorded("/oauth/token", dict(request.headers), b"", body))
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self.tokens_issued += 1
        tok = f"token-{self.tokens_issued}"
        self.valid_tokens.add(tok)
        doc: dict[str, Any] = {"access_token": tok}
        if self.expires_in is not None:
            doc["expires_in"] = self.expires_in
        return JSONResponse(doc, status_code=self.token_status)

    async def rpc(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(Recorded(request.url.path, dict(request.headers), body))
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return JSONResponse({"error": "invalid token"}, status_code=401)
        method = json.loads(body).get("method", "")
        if self.gate:
            await self._pass_gate()
        if not self.open.is_set():
            self.held.set()
            await asyncio.to_thread(self.open.wait, 60)
        status, answer = self.answers.get(method, (200, b'{"jsonrpc":"2.0","id":1,"result":[]}'))
        return Response(answer, status_code=status, media_type="application/json")

    async def _pass_gate(self) -> None:
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        async with self._arrived:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self._arrived.notify_all()
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: self.max_inflight >= self.gate), self.gate_timeout)
            except TimeoutError:
                pass
            finally:
                self.inflight -= 1

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/", self.rpc, methods=["POST"]),
                Route("/remote/oms", self.rpc, methods=["POST"]),
                Route("/delegate/oms", self.rpc, methods=["POST"]),
                Route("/events", self.rpc, methods=["POST"]),
            ]
        )

    def rpc_requests(self, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path != "/oauth/token" and (path is None or r.path == path)]

    def __enter__(self) -> FakeBus:
        self.server = ThreadedServer(self.app()).start()
        self.url = self.server.url + "/"
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.stop()
