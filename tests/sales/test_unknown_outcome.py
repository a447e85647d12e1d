"""An OMS answer that is no readable success (HTTP 200 with an empty body, as mom-mock answers on
its internal errors) is an unknown outcome: the order is never recorded ``exported``; the create is
sent again with the same message id and parked with the reason after the attempt limit. Real HTTP
(a small bus on loopback that answers what the test says), real database, real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.sales.conftest import PlaceOrder
from tests.service_bus.fakebus import CLIENT_ID, CLIENT_SECRET, FakeBus

from mcom import instance
from mcom.commerce.models import Order
from mcom.sales import jobs
from mcom.service_bus import client as bus_client
from mcom.service_bus import methods, worker
from mcom.service_bus.models import LoggedMessage


@pytest.fixture
def bus(env: Any) -> Iterator[FakeBus]:
    for f in instance.var_dir().glob("oauth-token-*.json"):
        f.unlink()
    with FakeBus() as fake:
        env(service_bus__url=fake.url, service_bus__oauth_server_url=fake.url,
            service_bus__oauth_client_id=CLIENT_ID, service_bus__oauth_client_secret=CLIENT_SECRET,
            service_bus__secret="test-delivery-secret-0123456789abcdef",
            queue__backoff_base_seconds=0, queue__max_attempts=3)
        bus_client.reset_client()
        yield fake
    bus_client.reset_client()


def create_ids(bus: FakeBus) -> list[str]:
    return [r.json["id"] for r in bus.rpc_requests("/delegate/oms") if r.json.get("method") == methods.ORDER_CREATE]


@pytest.mark.parametrize("body", [b"", b"<html>Internal error</html>", b'{"jsonrpc":"2.0","id":1}'])
def test_an_unreadable_answer_never_marks_the_order_exported(bus: FakeBus, place: PlaceOrder, body: bytes) -> None:
    bus.answers[methods.ORDER_CREATE] = (200, body)
    order = place()
    jobs.export_orders()
    worker.run_until_idle()
    order.refresh_from_db()
    msg = LoggedMessage.objects.get(topic=methods.ORDER_CREATE)
    ids = create_ids(bus)
    print(f"unknown outcome ({body[:20]!r}): {len(ids)} sends, message {msg.status}, order {order.oms_export_state}")
    assert order.oms_export_state == Order.EXPORT_FAILED  # never exported
    assert "OmsUnknownOutcome" in order.oms_export_error
    assert "unknown outcome" in order.oms_export_error
    assert msg.status == LoggedMessage.ERROR
    assert msg.attempts == 3
    assert msg.last_error.startswith("gave up after 3 attempts: OmsUnknownOutcome")
    assert ids == [msg.message_id] * 3  # retried with the same message id


def test_a_readable_answer_after_an_unknown_outcome_exports_with_the_same_message_id(
        bus: FakeBus, place: PlaceOrder) -> None:
    bus.answers[methods.ORDER_CREATE] = (200, b"")
    order = place()
    jobs.export_orders()
    worker.tick(LoggedMessage.OUT)
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_QUEUED
    assert order.oms_export_error.startswith("send failed, retrying: OmsUnknownOutcome")
    bus.answers[methods.ORDER_CREATE] = (200, json.dumps({"jsonrpc": "2.0", "id": 1, "result": []}).encode())
    worker.run_until_idle()
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_EXPORTED
    assert order.oms_export_error == ""
    ids = create_ids(bus)
    assert len(ids) == 2
    assert len(set(ids)) == 1


def test_a_missing_handler_is_parked_at_once(bus: FakeBus, place: PlaceOrder) -> None:
    bus.answers[methods.ORDER_CREATE] = (
        200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Handler not found"}}')
    order = place()
    jobs.export_orders()
    worker.run_until_idle()
    order.refresh_from_db()
    msg = LoggedMessage.objects.get(topic=methods.ORDER_CREATE)
    assert msg.status == LoggedMessage.ERROR
    assert msg.attempts == 1
    assert "Handler not found" in msg.last_error
    assert order.oms_export_state == Order.EXPORT_FAILED
    assert len(create_ids(bus)) == 1
