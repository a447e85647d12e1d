"""REST: POST/GET /api/orders/{increment_id}/returns (auth, 201, 404, 422 with field locations)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from mcom.commerce import tokens
from mcom.commerce.models import Rma
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage

from .conftest import MakeOrder


@pytest.fixture
def client(db: None) -> Client:
    _, token = tokens.create_token(name="shop")
    return Client(headers={"Authorization": f"Bearer {token}"})


def post(client: Client, increment_id: str, body: Any) -> Any:
    return client.post(f"/api/orders/{increment_id}/returns", body, content_type="application/json")


def test_request_return_answers_201_with_the_pending_rma(client: Client, make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 2, 2)])
    item = order.items.get()
    response = post(client, order.increment_id, {"reason": "too small", "lines": [
        {"order_item_id": item.pk, "qty": 1, "condition": "NEW"}]})
    assert response.status_code == 201, response.content
    body = response.json()
    rma = Rma.objects.get(order=order)
    assert body["request_id"] == rma.request_id
    assert body["status"] == "pending"
    assert body["rma_number"] is None
    assert body["items"] == [{"order_item_id": item.pk, "sku": "SKU-A", "qty": "1.0000", "reason": "too small",
                              "condition": "NEW", "status": ""}]
    msg = LoggedMessage.objects.get(topic=methods.RETURN_AUTHORIZE)
    assert '"user":"api:shop"' in msg.payload

    listed = client.get(f"/api/orders/{order.increment_id}/returns")
    assert listed.status_code == 200
    assert [r["request_id"] for r in listed.json()] == [rma.request_id]


@pytest.mark.parametrize(("body", "loc", "msg"), [
    ({"lines": [{"sku": "SKU-A", "qty": -1}]}, ["body", "lines", 0, "qty"], "greater than 0"),
    ({"lines": [{"sku": "SKU-A", "qty": "many"}]}, ["body", "lines", 0, "qty"], "valid decimal"),
    ({"lines": []}, ["body", "lines"], "at least 1 item"),
    ({"lines": [{"sku": "SKU-A", "qty": 3}]}, ["body", "lines", 0, "qty"],
     "3 is more than the 2 returnable of SKU-A (shipped 2, already returned or requested 0)"),
    ({"lines": [{"sku": "SKU-B", "qty": 1}]}, ["body", "lines", 0, "qty"], "has not been shipped"),
    ({"lines": [{"order_item_id": 1_000_000, "qty": 1}]}, ["body", "lines", 0, "order_item_id"],
     "is not a line of this order"),
])
def test_invalid_requests_answer_422_with_field_level_errors(
    client: Client, make_order: MakeOrder, body: Any, loc: list[Any], msg: str
) -> None:
    order = make_order([("SKU-A", 2, 2), ("SKU-B", 1, 0)])
    response = post(client, order.increment_id, body)
    assert response.status_code == 422, response.content
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert msg in error["msg"]
    assert not Rma.objects.exists()


def test_order_not_exported_answers_422_on_the_path(client: Client, make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)], exported=False)
    response = post(client, order.increment_id, {"lines": [{"sku": "SKU-A", "qty": 1}]})
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "loc": ["path", "increment_id"], "type": "value_error",
        "msg": f"order {order.increment_id} has not been exported to the OMS yet"}]


def test_unknown_order_answers_404(client: Client) -> None:
    response = post(client, "000404", {"lines": [{"sku": "SKU-A", "qty": 1}]})
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    assert client.get("/api/orders/000404/returns").status_code == 404


def test_anonymous_requests_are_refused(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)])
    response = post(Client(), order.increment_id, {"lines": [{"sku": "SKU-A", "qty": 1}]})
    assert response.status_code == 401
