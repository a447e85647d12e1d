"""Integration Enable / Disable: nothing is sent while disabled, deliveries are refused (-32601), the
queue is kept and sent after Enable; the CLI and the state file agree."""

from __future__ import annotations

import json
from typing import Any

import httpx
from click.testing import CliRunner
from tests.conftest import BUS_SECRET
from tests.sales.conftest import PlaceOrder

from mcom.cli.main import main
from mcom.commerce.models import Order
from mcom.sales import jobs as sales_jobs
from mcom.service_bus import integration, methods, signing
from mcom.service_bus import jobs as bus_jobs
from mcom.service_bus.models import LoggedMessage


def _deliver(url: str, method: str, params: dict[str, Any], rpc_id: str) -> httpx.Response:
    body = json.dumps({"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}).encode()
    return httpx.post(f"{url}/mcom/service-bus", content=body, timeout=10,
                      headers={"Content-Type": "application/json", signing.HEADER: signing.sign(BUS_SECRET, body)})


def test_disabled_integration_keeps_the_queue_refuses_deliveries_and_sends_after_enable(
    wired: Any, place: PlaceOrder
) -> None:
    oms = wired.sandbox.api
    integration.disable(by="test", reason="OMS maintenance")
    try:
        order = place()
        sales_jobs.export_orders()
        assert bus_jobs.send_outbound() == 0
        [msg] = LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic=methods.ORDER_CREATE)
        assert msg.status == LoggedMessage.NEW
        assert msg.attempts == 0
        assert oms.orders(q=order.increment_id) == []

        answer = _deliver(wired.connector.url, methods.ORDER_UPDATED,
                          {"order": {"id": order.increment_id, "status": "COMPLETE"}}, "d-1")
        assert answer.status_code == 200
        assert answer.json()["error"]["code"] == -32601
        assert "integration disabled" in answer.json()["error"]["message"]
        assert not LoggedMessage.objects.filter(direction=LoggedMessage.IN).exists()  # nothing half-accepted
    finally:
        integration.enable(by="test")
    assert bus_jobs.send_outbound() == 1
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_EXPORTED
    assert oms.order(order.increment_id)["id"] == order.increment_id
    answer = _deliver(wired.connector.url, methods.ORDER_UPDATED,
                      {"order": {"id": order.increment_id, "status": "COMPLETE"}}, "d-2")
    assert answer.json()["result"] == {}


def test_cli_disable_status_enable(db: None) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["oms:integration:disable", "--reason", "upgrade"])
    assert out.exit_code == 0, out.output
    assert "Integration disabled" in out.output
    assert not integration.enabled()
    status = runner.invoke(main, ["oms:integration:status"])
    assert "disabled" in status.output
    assert "upgrade" in status.output
    assert "cli:" in status.output
    process = runner.invoke(main, ["oms:queue:process", "--max-seconds", "1"])
    assert process.exit_code == 0
    assert "outbound messages stay queued" in process.output
    assert runner.invoke(main, ["oms:integration:enable"]).exit_code == 0
    assert integration.enabled()
    assert "Integration enabled." in runner.invoke(main, ["oms:integration:status"]).output
