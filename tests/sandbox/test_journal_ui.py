"""Journal queries, state counts, the web UI pages and forms, and independence from Django."""

from __future__ import annotations

import subprocess
import sys

import httpx

from mcom.sandbox.testing import SandboxServer

from .conftest import Bus, Receiver, order_params

CREATE = "magento.sales.order_management.create"


def test_journal_filters_and_state(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok(CREATE, order_params("1"))
    bus.ok(CREATE, order_params("2"))
    sandbox.api.ship("1")
    incoming = sandbox.api.journal(direction="incoming")
    assert [e["method"] for e in incoming] == [CREATE, CREATE, "magento.service_bus.remote.register"]
    outgoing = sandbox.api.journal(direction="outgoing")
    assert {e["counterpart"] for e in outgoing} == {"mdc"}
    assert len(outgoing) == 2
    assert all(e["status"] == "SUCCESS" and e["http_status"] == 200 for e in outgoing)
    assert sandbox.api.journal(method=CREATE, direction="outgoing") == []
    entry = sandbox.api.journal(method=CREATE)[0]
    assert set(entry) >= {"id", "direction", "method", "message_id", "payload", "status", "error", "http_status",
                          "created_at"}
    assert entry["message_id"].startswith("c")
    counts = sandbox.api.state()["counts"]
    assert counts["orders"] == 2
    assert counts["shipments"] == 1
    assert counts["integrations"] == 1
    assert "sandbox-secret" not in str(sandbox.api.state())


def test_ui_pages_and_forms(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok(CREATE, order_params())
    with httpx.Client(base_url=sandbox.url, follow_redirects=True) as web:
        for path in ("/", "/_sandbox/orders", "/_sandbox/orders/000000001", "/_sandbox/products", "/_sandbox/stock",
                     "/_sandbox/returns", "/_sandbox/registrations", "/_sandbox/journal?direction=incoming",
                     "/_sandbox/faults", "/_sandbox/orders/missing"):
            page = web.get(path)
            assert page.status_code == 200, path
            assert "OMS sandbox" in page.text, path
        page = web.post("/_sandbox/orders/000000001/ship", data={"qty_11": "1", "carrier": "DHL"},
                        headers={"Referer": sandbox.url + "_sandbox/orders/000000001"})
        assert page.url.path == "/_sandbox/orders/000000001"
        assert "flash ok" in page.text
        assert "PARTIALLYSHIPPED" in page.text
        page = web.post("/_sandbox/stock/snapshot", data={"aggregate": "default", "mode": "DELTA",
                                                           "items": "A,1\nB,0,unlimited"})
        assert "Snapshot of 2 SKUs in 1 message(s)" in page.text
        page = web.post("/_sandbox/orders/000000001/status", data={"status": ""})
        assert "flash error" in page.text
        page = web.post("/_sandbox/faults", data={"fail_next": "0", "mode": "http_503", "latency_ms": "0",
                                                   "expire_tokens": "1"})
        assert "tokens expired" in page.text


def test_sandbox_never_imports_django() -> None:
    code = ("import sys, mcom.sandbox.server, mcom.sandbox.testing; "
            "bad = [m for m in sys.modules if m.startswith('django') or "
            "(m.startswith('mcom.') and not m.startswith('mcom.sandbox'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
