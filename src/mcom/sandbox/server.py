"""App factory and uvicorn runner, including the listener that can really go down and up."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route

from mcom.sandbox import api, app, oms, ui
from mcom.sandbox.actions import Listener, Sandbox
from mcom.sandbox.bus import TokenIssuer
from mcom.sandbox.delivery import Deliverer
from mcom.sandbox.faults import Faults
from mcom.sandbox.store import Store

log = logging.getLogger("mcom.sandbox")

DEFAULT_DB = str(Path("var") / "sandbox.sqlite3")


def create_app(db_path: str, client_id: str, client_secret: str, token_ttl: int = 3600, *,
               require_token: bool = True) -> Starlette:
    """The sandbox ASGI app over its own SQLite file ``db_path`` (created when missing, mode 0600).

    ``require_token=False``: a development bus without OAuth (JSON-RPC calls need no bearer token).
    """
    db = Store(db_path)
    tokens = TokenIssuer(client_id, client_secret, token_ttl)
    tokens.required = require_token
    sb = Sandbox(store=db, tokens=tokens, faults=Faults(),
                 deliverer=Deliverer(db), methods=oms.registry())

    @asynccontextmanager
    async def lifespan(application: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for task in list(sb.background):
                task.cancel()
            await sb.deliverer.close()

    async def home(request: Any) -> RedirectResponse:
        return RedirectResponse("/_sandbox/", status_code=303)

    routes = [*app.routes(), Route("/", home, methods=["GET"]), *api.routes(), *ui.routes()]
    application = Starlette(routes=routes, lifespan=lifespan)
    application.state.sandbox = sb
    return application


class SandboxUvicorn(uvicorn.Server, Listener):
    """A uvicorn server whose listening socket can be closed (``go_down``) and reopened on the same port."""

    def __init__(self, config: uvicorn.Config, host: str, port: int) -> None:
        super().__init__(config)
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._factory: Any = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        # The same protocol factory uvicorn's startup builds, to listen again in go_up().
        self._factory = functools.partial(self.config.http_protocol_class, config=self.config,  # type: ignore[call-arg]
                                          server_state=self.server_state, app_state=self.lifespan.state)
        if self.servers and self.servers[0].sockets:
            self.port = self.servers[0].sockets[0].getsockname()[1]

    async def go_down(self) -> None:
        """Close the listening socket (new connections are refused) and end idle keep-alive ones."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        log.info("sandbox listener is down (port %d)", self.port)

    async def go_up(self) -> None:
        if any(server.is_serving() for server in self.servers):
            return
        sock = socket.create_server((self.host, self.port), backlog=self.config.backlog)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._factory, sock=sock, backlog=self.config.backlog)
        self.servers = [server]
        log.info("sandbox listener is up again (port %d)", self.port)


def build_server(application: Starlette, host: str, port: int, *, log_level: str = "info",
                 access_log: bool = True) -> SandboxUvicorn:
    config = uvicorn.Config(application, host=host, port=port, log_level=log_level, access_log=access_log,
                            timeout_keep_alive=30, lifespan="on")
    server = SandboxUvicorn(config, host, port)
    application.state.sandbox.listener = server
    return server


def run(host: str = "127.0.0.1", port: int = 8089, db_path: str | None = None, client_id: str = "mcom",
        client_secret: str = "sandbox-secret", token_ttl: int = 3600, *,  # noqa: S107
        require_token: bool = True) -> None:
    """Serve the sandbox with uvicorn until interrupted (``mcom oms:sandbox``)."""
    path = db_path or DEFAULT_DB
    application = create_app(path, client_id, client_secret, token_ttl, require_token=require_token)
    log.info("OMS sandbox database: %s", path)
    build_server(application, host, port).run()
