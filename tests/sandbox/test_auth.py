"""OAuth2 client credentials and bearer checks, over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from mcom.sandbox.testing import SandboxServer

from .conftest import Bus

FORM = {"grant_type": "client_credentials", "client_id": "mcom", "client_secret": "sandbox-secret"}


def test_token_with_form_credentials(sandbox: SandboxServer) -> None:
    response = httpx.post(sandbox.oauth_url + "oauth/token", data=FORM)
    assert response.status_code == 200
    doc = response.json()
    assert doc["token_type"] == "Bearer"
    assert doc["expires_in"] == 3600
    assert doc["access_token"]
    assert response.headers["cache-control"] == "no-store"


def test_token_with_basic_auth(sandbox: SandboxServer) -> None:
    response = httpx.post(sandbox.oauth_url + "oauth/token", data={"grant_type": "client_credentials"},
                          auth=("mcom", "sandbox-secret"))
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_wrong_credentials_are_invalid_client(sandbox: SandboxServer) -> None:
    response = httpx.post(sandbox.oauth_url + "oauth/token", data={**FORM, "client_secret": "nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]
    basic = httpx.post(sandbox.oauth_url + "oauth/token", data={"grant_type": "client_credentials"},
                       auth=("mcom", "nope"))
    assert basic.status_code == 401
    assert "www-authenticate" in basic.headers


def test_unsupported_grant(sandbox: SandboxServer) -> None:
    response = httpx.post(sandbox.oauth_url + "oauth/token", data={**FORM, "grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_rpc_needs_a_valid_token(sandbox: SandboxServer, bus: Bus) -> None:
    body = {"jsonrpc": "2.0", "id": "x", "method": "magento.inventory.source_repository.search", "params": {}}
    missing = httpx.post(sandbox.url + "remote/oms", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": -32001, "message": "invalid or expired token"}
    assert missing.json()["id"] == "x"
    bogus = bus.call("magento.inventory.source_repository.search", {}, "remote/oms", token="bogus")
    assert bogus.status_code == 401


def test_token_expires_then_a_new_one_works(tmp_path: Path) -> None:
    with SandboxServer(tmp_path, token_ttl=1) as sandbox:
        bus = Bus(sandbox)
        assert bus.call("magento.inventory.source_repository.search", {}, "remote/oms").status_code == 200
        time.sleep(1.2)
        expired = bus.call("magento.inventory.source_repository.search", {}, "remote/oms")
        assert expired.status_code == 401
        assert expired.json()["error"]["code"] == -32001
        bus.token = sandbox.token()
        assert bus.call("magento.inventory.source_repository.search", {}, "remote/oms").status_code == 200
        bus.http.close()
