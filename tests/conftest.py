"""Shared fixtures: the instance configuration, a live connector server and the sandbox OMS.

Integration tests cross the real wire: ``wired`` starts the sandbox OMS and the connector on free
loopback ports, points the connector's ``[service_bus]`` at the sandbox (through ``MCOM_*``
environment overrides, as an operator would) and registers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcom import envconfig

SANDBOX_CLIENT_ID = "mcom"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
BUS_SECRET = "test-delivery-secret-0123456789abcdef"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``env(**{"service_bus__url": ...})`` sets ``MCOM_*`` overrides and reloads the config."""

    def set_(**overrides: Any) -> envconfig.EnvConfig:
        for key, value in overrides.items():
            name = "MCOM_" + key.upper()
            if isinstance(value, (list, tuple)):
                value = ",".join(value)
            monkeypatch.setenv(name, str(value).lower() if isinstance(value, bool) else str(value))
        return envconfig.reload()

    yield set_
    monkeypatch.undo()
    envconfig.reload()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Any]:
    """A running sandbox OMS (own SQLite database) on a free loopback port."""
    from mcom.sandbox.testing import SandboxServer

    with SandboxServer(tmp_path, client_id=SANDBOX_CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def connector(transactional_db: None) -> Iterator[Any]:
    """The connector's web app served by uvicorn on a free loopback port (real test database)."""
    from mcom.testing.live import connector_server

    with connector_server() as server:
        yield server
    from mcom.service_bus.ingest import close_writers

    close_writers()  # the fast ingest path's DB connection (else the test database cannot be dropped)


@dataclass
class Wired:
    sandbox: Any
    connector: Any
    config: envconfig.EnvConfig


@pytest.fixture
def wired(sandbox: Any, connector: Any, env: Any) -> Wired:
    """Connector ⇄ sandbox over HTTP, configured and registered."""
    cfg = env(
        service_bus__url=sandbox.url,
        service_bus__oauth_server_url=sandbox.url,
        service_bus__oauth_client_id=SANDBOX_CLIENT_ID,
        service_bus__oauth_client_secret=SANDBOX_CLIENT_SECRET,
        service_bus__secret=BUS_SECRET,
        service_bus__application_base_url=connector.url,
    )
    from mcom.service_bus import registration

    registration.register(source="test")
    return Wired(sandbox, connector, cfg)
