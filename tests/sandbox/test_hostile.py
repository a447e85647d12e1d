"""The sandbox refuses bad input with a clear message (UI and JSON API), can still send a malformed
delivery on purpose (fault switch), and keeps its secrets out of ``ps`` and out of its database."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from mcom.sandbox.testing import SandboxServer
from mcom.testing.live import free_port

from .conftest import SECRET, Bus, Receiver

STOCK = "magento.inventory.aggregate_stock_management.updated"


def test_ui_stock_line_with_a_bad_quantity_is_refused_with_a_message(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    r = httpx.post(sandbox.url + "_sandbox/stock/snapshot", data={"aggregate": "default", "mode": "DELTA",
                                                                   "items": "MS-000001,abc"})
    assert r.status_code == 303
    flash = parse_qs(urlsplit(r.headers["location"]).query)
    assert flash["level"] == ["error"]
    assert "items[0].quantity (MS-000001): 'abc' is not a number" in flash["flash"][0]
    time.sleep(0.2)
    assert receiver.of(STOCK) == []  # nothing was sent (it used to be sent as 0 and zero the stock)


def test_api_quantity_abc_is_refused(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    r = httpx.post(sandbox.url + "_sandbox/api/stock/snapshot",
                   json={"aggregate": "default", "mode": "DELTA", "items": [{"sku": "MS-000001", "quantity": "abc"}]})
    assert r.status_code == 400
    assert "'abc' is not a number" in r.json()["error"]
    for bad in (-1, "NaN", "inf", None, [1]):
        r = httpx.post(sandbox.url + "_sandbox/api/stock/inventory",
                       json={"source": "WH1", "items": [{"sku": "MS-000001", "quantity": bad}]})
        assert r.status_code == 400, bad
    assert receiver.of(STOCK) == []
    ok = sandbox.api.stock_snapshot("default", "DELTA", [{"sku": "MS-000001", "quantity": "7"}])
    assert ok["deliveries"][0]["status"] == "SUCCESS"
    assert receiver.wait_for(STOCK)[0].params["snapshot"]["stock"] == [{"sku": "MS-000001", "quantity": 7}]


def test_fault_switch_sends_a_malformed_delivery_on_purpose(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    assert sandbox.api.faults(malformed_next=1)["malformed_next"] == 1
    sandbox.api.stock_snapshot("default", "DELTA", [{"sku": "MS-000001", "quantity": "abc"}])
    assert receiver.wait_for(STOCK)[0].params["snapshot"]["stock"] == [{"sku": "MS-000001", "quantity": "abc"}]
    assert sandbox.api.state()["faults"]["malformed_next"] == 0
    r = httpx.post(sandbox.url + "_sandbox/api/stock/snapshot",
                   json={"aggregate": "default", "mode": "DELTA", "items": [{"sku": "MS-000001", "quantity": "abc"}]})
    assert r.status_code == 400  # one switch, one malformed delivery


def test_database_is_private_and_holds_no_bus_secret(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    sandbox.api.stock_snapshot("default", "DELTA", [{"sku": "MS-000001", "quantity": 1}])
    (delivery,) = receiver.wait_for(STOCK)
    assert delivery.headers["x-signature"].startswith("sha1=")  # still signed with the registered secret
    db = Path(sandbox.db_path)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_cli_takes_the_client_secret_from_a_file_not_the_command_line(tmp_path: Path) -> None:
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("file-secret-0123456789\n")
    port = free_port()
    env = {**os.environ, "MCOM_ROOT": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcom.cli.main", "oms:sandbox", "--port", str(port), "--client-secret-file", str(secret_file),
         "--db", str(tmp_path / "sb.sqlite3")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/oauth/token", data={
                    "grant_type": "client_credentials", "client_id": "mcom", "client_secret": "file-secret-0123456789"})
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["access_token"]
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"file-secret" not in cmdline
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_refuses_an_empty_secret_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    out = subprocess.run([sys.executable, "-m", "mcom.cli.main", "oms:sandbox", "--client-secret-file", str(empty)],
                         env={**os.environ, "MCOM_ROOT": str(tmp_path)}, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "is empty" in out.stderr


def test_no_auth_sandbox_accepts_calls_without_a_token(tmp_path: Path) -> None:
    with SandboxServer(tmp_path, require_token=False) as sb:
        r = httpx.post(sb.url + "remote/oms", json={"jsonrpc": "2.0", "id": "1", "method":
                                                    "magento.inventory.source_repository.search", "params": {}})
        assert r.status_code == 200
        assert "result" in r.json()


def test_after_a_restart_the_sandbox_asks_for_a_new_registration(tmp_path: Path, receiver: Receiver) -> None:
    with SandboxServer(tmp_path) as first:
        Bus(first).register(receiver)
    with SandboxServer(tmp_path) as again:  # same database file, new process state
        (result,) = again.api.stock_snapshot("default", "DELTA", [{"sku": "MS-000001", "quantity": 1}])["deliveries"]
        assert result["status"] == "ERROR"
        assert "register again" in result["error"]
        Bus(again).register(receiver)
        (result,) = again.api.stock_snapshot("default", "DELTA", [{"sku": "MS-000001", "quantity": 1}])["deliveries"]
        assert result["status"] == "SUCCESS"
    assert len(receiver.of(STOCK)) == 1
