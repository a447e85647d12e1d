"""Secrets at rest and development buses: private log/database files, short-secret warning at
registration, ``service_bus.auth = "none"`` (no OAuth, no bearer token; refused in production)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcom import envconfig, logconfig


def test_log_file_is_created_private(tmp_path: Path) -> None:
    target = tmp_path / "log" / "mcom-connector.log"
    target.parent.mkdir()
    handler = logconfig.PrivateRotatingFileHandler(str(target), maxBytes=200, backupCount=2, encoding="utf-8")
    try:
        logger = logging.getLogger("mcom.test.private")
        logger.addHandler(handler)
        for n in range(20):
            logger.warning("line %d of the private log", n)  # rotates: the copies stay private too
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = list(target.parent.iterdir())
    assert len(files) >= 2
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_existing_world_readable_log_file_is_made_private(tmp_path: Path) -> None:
    target = tmp_path / "old.log"
    target.write_text("from an older version\n")
    target.chmod(0o644)
    logconfig.PrivateRotatingFileHandler(str(target)).close()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_private_file_helper(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mcom.sqlite3"
    logconfig.private_file(db)
    assert db.exists()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_instance_log_is_private_after_setup() -> None:
    log_file = logconfig.instance.log_file()
    logging.getLogger("mcom.test").warning("make sure the file exists")
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def test_registration_warns_on_a_short_secret(db: None, env: Any, caplog: pytest.LogCaptureFixture) -> None:
    from mcom.service_bus import registration

    env(service_bus__secret="q7Zk2", service_bus__url="http://127.0.0.1:9/", service_bus__auth="none",
        service_bus__application_base_url="http://127.0.0.1:9/shop")
    caplog.clear()
    with pytest.raises(registration.RegistrationError):
        registration.register(source="test")  # nobody listens on port 9
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    registration_warnings = [r for r in caplog.records if r.name == "mcom.config" and "shorter than 32" in r.getMessage()]
    assert registration_warnings
    assert not any("q7Zk2" in w for w in warnings)


def test_auth_none_is_refused_in_production() -> None:
    with pytest.raises(envconfig.ConfigError) as e:
        envconfig.parse({"mode": "production", "service_bus": {"auth": "none"}})
    assert str(e.value) == 'env.toml: service_bus.auth = "none" is for development buses only; use "oauth2" in production mode'
    assert envconfig.parse({"mode": "developer", "service_bus": {"auth": "none"}}).service_bus.auth == "none"


def test_auth_none_needs_no_oauth_keys() -> None:
    cfg = envconfig.parse({"service_bus": {"auth": "none", "url": "http://127.0.0.1:1/", "secret": "x" * 32}})
    assert cfg.require_service_bus().auth == "none"


def test_auth_none_registers_and_sends_without_a_bearer_token(db: None, env: Any, tmp_path: Path) -> None:
    """Against a sandbox without OAuth; the OAuth URL points nowhere, so any token fetch would fail."""
    from mcom.sandbox.testing import SandboxServer
    from mcom.service_bus import client as bus_client
    from mcom.service_bus import registration

    seen: list[str | None] = []
    with SandboxServer(tmp_path, require_token=False) as sb:
        env(service_bus__auth="none", service_bus__url=sb.url, service_bus__oauth_server_url="http://127.0.0.1:9/",
            service_bus__secret="d" * 32, service_bus__application_base_url="http://127.0.0.1:9/shop")
        transport = httpx.HTTPTransport()

        class Spy(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                seen.append(request.headers.get("authorization"))
                return transport.handle_request(request)

        bus_client.reset_client(transport=Spy())
        try:
            reg = registration.register(source="test")
            result = bus_client.get_client().call("magento.inventory.source_repository.search", {})
        finally:
            bus_client.reset_client()
    assert reg.ok
    assert isinstance(result, dict)
    assert seen
    assert seen == [None] * len(seen)
