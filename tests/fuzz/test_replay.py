"""Replay protection outlives pruning: a captured signed delivery replayed after its log row was
pruned is logged but not applied again; a dated delivery older than the window is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from django.utils import timezone

from mcom.commerce.models import Order, Product, Store
from mcom.commerce.schemas import OrderIn
from mcom.commerce.services import place_order
from mcom.service_bus import methods, prune, signing, worker
from mcom.service_bus.models import AppliedInbound, LoggedMessage

from .conftest import SECRET


def _deliver(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/mcom/service-bus", content=body,
                      headers={"Content-Type": "application/json", "X-Signature": signing.sign(SECRET, body)}, timeout=10)


def _update(increment_id: str, msg_id: str, code: str, reason: str) -> bytes:
    doc = {"jsonrpc": "2.0", "id": msg_id, "method": methods.ORDER_UPDATED,
           "params": {"order": {"id": increment_id, "status": code, "status_reason": reason}}}
    return json.dumps(doc).encode()


def _order() -> Order:
    Store.objects.update_or_create(code="default", defaults={"name": "Default"})
    Product.objects.create(sku="SKU-A", name="Alpha", price=Decimal("10.00"))
    return place_order(OrderIn.model_validate({
        "customer_email": "ada@example.com",
        "billing_address": {"firstname": "Ada", "lastname": "L", "street1": "1 Way", "city": "Berlin",
                            "postcode": "10115", "country_id": "DE"},
        "lines": [{"sku": "SKU-A", "qty": 1}],
    }))


def test_signed_delivery_replayed_after_pruning_does_not_change_the_order(connector: Any, secured: Any) -> None:
    order = _order()
    captured = _update(order.increment_id, "oms-1", "ONHOLD", "PENDINGREMORSETIME")
    assert _deliver(connector.url, captured).status_code == 200
    worker.run_until_idle()
    assert Order.objects.get(pk=order.pk).oms_status == "ONHOLD"
    assert _deliver(connector.url, _update(order.increment_id, "oms-2", "logistics", "READYTOSHIP")).status_code == 200
    worker.run_until_idle()
    assert Order.objects.get(pk=order.pk).status == "processing"

    LoggedMessage.objects.update(created_at=timezone.now() - timedelta(days=40))
    assert prune.prune(30) >= 2
    assert not LoggedMessage.objects.filter(direction="in").exists()
    assert AppliedInbound.objects.count() == 2

    r = _deliver(connector.url, captured)  # the attacker's replay of the captured bytes
    assert r.status_code == 200
    worker.run_until_idle()
    after = Order.objects.get(pk=order.pk)
    assert (after.status, after.oms_status) == ("processing", "logistics")
    (replayed,) = LoggedMessage.objects.filter(direction="in")
    assert replayed.status == LoggedMessage.IGNORED
    assert "replay of a message received" in replayed.last_error


def test_a_new_message_reusing_an_old_id_is_still_applied(connector: Any, secured: Any) -> None:
    order = _order()
    assert _deliver(connector.url, _update(order.increment_id, "1", "ONHOLD", "A")).status_code == 200
    worker.run_until_idle()
    LoggedMessage.objects.update(created_at=timezone.now() - timedelta(days=40))
    prune.prune(30)
    assert _deliver(connector.url, _update(order.increment_id, "1", "logistics", "READYTOSHIP")).status_code == 200
    worker.run_until_idle()
    assert Order.objects.get(pk=order.pk).oms_status == "logistics"


def test_dated_delivery_older_than_the_window_is_refused(connector: Any, secured: Any, env: Any) -> None:
    env(service_bus__replay_window_days=30)
    old = (timezone.now() - timedelta(days=31)).isoformat()
    doc = {"jsonrpc": "2.0", "id": "late", "method": methods.ORDER_UPDATED,
           "params": {"order": {"id": "000000001", "status": "NEW", "status_date": old}}}
    r = _deliver(connector.url, json.dumps(doc).encode())
    assert r.status_code == 200
    assert r.json()["error"]["code"] == -32602
    assert "older than the replay window (30 days)" in r.json()["error"]["message"]
    assert not LoggedMessage.objects.exists()
    doc["params"]["order"]["status_date"] = timezone.now().isoformat()
    doc["id"] = "fresh"
    assert "result" in _deliver(connector.url, json.dumps(doc).encode()).json()
