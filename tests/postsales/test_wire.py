"""End to end over real HTTP: connector ⇄ sandbox OMS (``wired``), returns and refunds.

Place and export an order, the sandbox ships it, a return is requested over REST, the sandbox
authorizes, approves and refunds it; the connector ends with an approved RMA and one credit memo.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any, TypeVar

import httpx
import pytest

from mcom.commerce import config, tokens
from mcom.commerce.models import CreditMemo, Order, OrderItem, Product, Rma, Store
from mcom.sales import export as sales
from mcom.service_bus import methods, signing, worker
from mcom.service_bus.models import LoggedMessage

pytestmark = pytest.mark.slow

T = TypeVar("T")


def until(check: Callable[[], T], *, timeout: float = 15.0) -> T:
    """Run the connector's worker until ``check()`` is truthy (deliveries may land a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        worker.run_until_idle(max_seconds=5)
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            log = [(m.direction, m.topic, m.status, m.last_error[:200], m.result[:300])
                   for m in LoggedMessage.objects.order_by("id")]
            raise AssertionError(f"condition not met within {timeout}s; message log: {log}")
        time.sleep(0.05)


@pytest.fixture
def rest(wired: Any) -> httpx.Client:
    _, token = tokens.create_token(name="storefront")
    return httpx.Client(base_url=f"{wired.connector.url}/api", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


@pytest.fixture
def shipped_order(wired: Any, rest: httpx.Client) -> Order:
    """An order of 2 × SKU-R1 and 2 × SKU-R2 placed over REST, exported and fully shipped by the sandbox."""
    Store.objects.get_or_create(code="default", defaults={"name": "Default"})
    config.set_value("mcom/general/sales_channel_id", "web-eu")
    for sku in ("SKU-R1", "SKU-R2"):
        Product.objects.create(sku=sku, name=f"Product {sku}", price=D("10.00"))
    placed = rest.post("/orders", json={
        "customer_email": "ada@example.com",
        "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Way", "city": "Berlin",
                            "postcode": "10115", "country_id": "DE"},
        "lines": [{"sku": "SKU-R1", "qty": 2, "tax_percent": 21}, {"sku": "SKU-R2", "qty": 2, "tax_percent": 21}],
    })
    assert placed.status_code == 201, placed.text
    order = Order.objects.get(increment_id=placed.json()["increment_id"])
    sales.queue_orders(order_ids=[order.pk], due_only=False)
    until(lambda: Order.objects.get(pk=order.pk).is_exported)
    wired.sandbox.api.ship(order.increment_id)
    until(lambda: all(i.qty_shipped == i.qty_ordered for i in OrderItem.objects.filter(order=order)))
    return Order.objects.get(pk=order.pk)


def deliver(wired: Any, message_id: str, method: str, params: dict[str, Any]) -> httpx.Response:
    """A signed delivery to the connector's inbound endpoint, as the bus sends it."""
    body = json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}).encode()
    secret = wired.config.service_bus.secret.get_secret_value()
    return httpx.post(f"{wired.connector.url}/mcom/service-bus", content=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Signature": signing.sign(secret, body)})


def _rma(order: Order) -> Rma:
    return Rma.objects.get(order=order)


def test_return_approve_and_refund_end_to_end(wired: Any, rest: httpx.Client, shipped_order: Order) -> None:
    order = shipped_order
    r1 = order.items.get(sku="SKU-R1")
    # 1. request a return over REST: the connector answers at once, the OMS is asked asynchronously
    response = rest.post(f"/orders/{order.increment_id}/returns", json={
        "reason": "damaged", "lines": [{"order_item_id": r1.pk, "qty": 2, "condition": "DAMAGED"}]})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending"

    # 2. the sandbox has the RMA, and its REQUESTED update is matched to ours
    rma = until(lambda: (r := _rma(order)).rma_number and r.status == "REQUESTED" and r)
    [oms_rma] = [r for r in wired.sandbox.api.returns() if r["rma"] == rma.rma_number]
    assert oms_rma["order_id"] == order.increment_id
    assert oms_rma["status"] == "REQUESTED"
    assert LoggedMessage.objects.get(topic=methods.RETURN_AUTHORIZE).status == LoggedMessage.COMPLETE

    # 3. the OMS approves → APPROVED in the connector, returned quantity recorded
    wired.sandbox.api.approve_return(rma.rma_number)
    until(lambda: _rma(order).status == "APPROVED")
    assert OrderItem.objects.get(pk=r1.pk).qty_returned == D(2)

    # 4. the OMS refunds → one credit memo with the amounts of the two returned units
    refund = wired.sandbox.api.refund(rma.rma_number)
    memo = until(lambda: CreditMemo.objects.filter(order=order).first())
    assert memo.credit_note_number == refund["credit_note_number"]
    assert memo.rma_id == rma.pk
    assert (memo.subtotal, memo.tax_amount, memo.grand_total) == (D("20.00"), D("4.20"), D("24.20"))
    [line] = memo.items.all()
    assert (line.order_item_id, line.qty, line.row_total, line.tax_amount, line.row_total_incl_tax) == (
        r1.pk, D(2), D("20.00"), D("4.20"), D("24.20"))
    order.refresh_from_db()
    assert order.total_refunded == D("24.20")
    assert OrderItem.objects.get(pk=r1.pk).qty_refunded == D(2)
    assert order.state != Order.STATE_CLOSED  # SKU-R2 was not refunded

    # 5. the same refund delivered again → still one credit memo: the bus redelivers the same
    #    message (same id), and the same refund comes again as a new message (new id)
    [entry] = wired.sandbox.api.journal(method=methods.REFUND_UPDATED, direction="outgoing")
    wired.sandbox.api.redeliver(entry["id"])
    [logged] = LoggedMessage.objects.filter(topic=methods.REFUND_UPDATED)
    params = json.loads(logged.payload)["params"]
    assert deliver(wired, "refund-again", methods.REFUND_UPDATED, params).status_code == 200
    again = until(lambda: LoggedMessage.objects.filter(message_id="refund-again", status=LoggedMessage.COMPLETE).first())
    assert json.loads(again.result)["duplicate"] is True
    assert CreditMemo.objects.filter(order=order).count() == 1
    assert Order.objects.get(pk=order.pk).total_refunded == D("24.20")
    assert OrderItem.objects.get(pk=r1.pk).qty_refunded == D(2)


def test_rejected_return_and_pending_release(wired: Any, rest: httpx.Client, shipped_order: Order) -> None:
    order = shipped_order
    response = rest.post(f"/orders/{order.increment_id}/returns", json={"lines": [{"sku": "SKU-R2", "qty": 1}]})
    assert response.status_code == 201, response.text
    rma = until(lambda: (r := _rma(order)).rma_number and r)
    wired.sandbox.api.reject_return(rma.rma_number)
    until(lambda: _rma(order).status == "REJECTED")
    # the rejected quantity may be requested again
    again = rest.post(f"/orders/{order.increment_id}/returns", json={"lines": [{"sku": "SKU-R2", "qty": 1}]})
    assert again.status_code == 201, again.text
    second = until(lambda: Rma.objects.filter(order=order, rma_number__isnull=False).exclude(pk=rma.pk).first())
    wired.sandbox.api.approve_return(second.rma_number)
    wired.sandbox.api.refund(second.rma_number, status="PENDINGRELEASE")
    until(lambda: LoggedMessage.objects.filter(topic=methods.REFUND_UPDATED, status=LoggedMessage.COMPLETE).exists())
    assert not CreditMemo.objects.filter(order=order).exists()
    wired.sandbox.api.refund(second.rma_number, status="RELEASED")
    memo = until(lambda: CreditMemo.objects.filter(order=order).first())
    assert memo.grand_total == D("12.10")


def test_invalid_requests_are_rejected_with_field_level_errors(wired: Any, rest: httpx.Client,
                                                              shipped_order: Order) -> None:
    order = shipped_order
    r1 = order.items.get(sku="SKU-R1")
    too_many = rest.post(f"/orders/{order.increment_id}/returns", json={"lines": [{"order_item_id": r1.pk, "qty": 3}]})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "lines", 0, "qty"]
    assert "3 is more than the 2 returnable" in too_many.json()["detail"][0]["msg"]
    unknown = rest.post("/orders/does-not-exist/returns", json={"lines": [{"sku": "SKU-R1", "qty": 1}]})
    assert unknown.status_code == 404
    assert not Rma.objects.exists()
    assert wired.sandbox.api.returns() == []


def test_malformed_inbound_payload_is_parked_with_its_error(wired: Any) -> None:
    answer = deliver(wired, "bad-1", methods.REFUND_UPDATED, {"refund": {"order_id": "000000001", "lines": "oops"}})
    assert answer.status_code == 200, answer.text
    row = until(lambda: LoggedMessage.objects.filter(message_id="bad-1", status=LoggedMessage.ERROR).first())
    assert "InvalidPayload" in row.last_error
    assert "refund.status" in row.last_error
    assert "refund.lines" in row.last_error
