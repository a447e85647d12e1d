"""Each fault switch behaves as named, over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from mcom.sandbox.testing import SandboxServer

from .conftest import Bus

SEARCH = "magento.inventory.source_repository.search"


def test_fail_next_n_with_http_503(sandbox: SandboxServer, bus: Bus) -> None:
    assert sandbox.api.faults(fail_next=2)["fail_next"] == 2
    first, second, third = (bus.call(SEARCH, {}, "remote/oms") for _ in range(3))
    assert first.status_code == second.status_code == 503
    assert first.json()["error"] == {"code": -32000, "message": "simulated failure"}
    assert third.status_code == 200
    assert "result" in third.json()
    assert sandbox.api.state()["faults"]["fail_next"] == 0


def test_fail_next_with_rpc_error(sandbox: SandboxServer, bus: Bus) -> None:
    sandbox.api.faults(fail_next=1, mode="rpc_error")
    failed = bus.call(SEARCH, {}, "remote/oms")
    assert failed.status_code == 200
    assert failed.json()["error"]["code"] == -32000
    assert "result" in bus.call(SEARCH, {}, "remote/oms").json()
    (entry, *_) = sandbox.api.journal(status="ERROR")
    assert entry["error"] == "simulated failure (rpc_error)"


def test_latency(sandbox: SandboxServer, bus: Bus) -> None:
    sandbox.api.faults(latency_ms=300)
    started = time.monotonic()
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200
    assert time.monotonic() - started >= 0.3
    sandbox.api.faults(latency_ms=0)
    started = time.monotonic()
    bus.call(SEARCH, {}, "remote/oms")
    assert time.monotonic() - started < 0.3


def test_down_refuses_connections_until_up(sandbox: SandboxServer, bus: Bus) -> None:
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200  # a pooled keep-alive connection exists
    sandbox.api.down()
    with pytest.raises(httpx.TransportError):
        httpx.post(sandbox.url + "remote/oms", json={})
    with pytest.raises(httpx.TransportError):
        bus.call(SEARCH, {}, "remote/oms")  # the kept-alive connection was closed too
    sandbox.api.up()
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200
    assert sandbox.api.state()["faults"]["down"] is False


def test_down_for_seconds_over_http(sandbox: SandboxServer, bus: Bus) -> None:
    sandbox.api.down(seconds=0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(sandbox.url + "_sandbox/api/state")
    time.sleep(0.8)
    assert httpx.get(sandbox.url + "_sandbox/api/state").json()["faults"]["down"] is False
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200


def test_expire_tokens(sandbox: SandboxServer, bus: Bus) -> None:
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200
    assert sandbox.api.faults(expire_tokens=True)["expired_tokens"] >= 1
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 401
    bus.token = sandbox.token()
    assert bus.call(SEARCH, {}, "remote/oms").status_code == 200


def test_bad_fault_mode(sandbox: SandboxServer) -> None:
    response = httpx.post(sandbox.url + "_sandbox/api/faults", json={"mode": "explode"})
    assert response.status_code == 400
    assert "mode" in response.json()["error"]
