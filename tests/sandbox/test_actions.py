"""Actions deliver signed messages to a real receiver; shapes follow oms-protocol.md §8."""

from __future__ import annotations

from typing import Any

import pytest

from mcom.sandbox.testing import SandboxError, SandboxServer

from .conftest import Bus, Receiver, assert_signed, order_params

UPDATED = "magento.sales.order_management.updated"
SHIPMENT_DONE = "magento.logistics.fulfillment_management.customer_shipment_done"
STOCK = "magento.inventory.aggregate_stock_management.updated"
RETURN_UPDATED = "magento.postsales.return_management.updated"
REFUND_UPDATED = "magento.postsales.refund_management.updated"


def _lines(order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ln["id"]: ln for ln in order["lines"]}


def test_ship_all_delivers_signed_shipment_then_update(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    result = sandbox.api.ship("000000001", carrier="UPS", tracking="1Z999")
    assert result["order_status"] == "COMPLETE"
    assert [d["status"] for d in result["deliveries"]] == ["SUCCESS", "SUCCESS"]
    assert [m.method for m in receiver.messages] == [SHIPMENT_DONE, UPDATED]
    for message in receiver.messages:
        assert_signed(message)
        assert message.doc["jsonrpc"] == "2.0"
        assert isinstance(message.doc["id"], str)
        assert message.path == "/mcom/service-bus"
    shipment = receiver.messages[0].params["shipment"]
    assert shipment["order_id"] == "000000001"
    assert shipment["store_id"] == "default"
    assert shipment["method"] == "STANDARD"
    assert shipment["source_id"] == "WH1"
    assert [i["order_line_id"] for i in shipment["items"]] == ["11", "12"]
    assert all(i["status"] == "SHIPPED" for i in shipment["items"])
    (package,) = shipment["packages"]
    assert package["carrier"] == "UPS"
    assert package["tracking_number"] == "1Z999"
    assert package["items"] == [1, 2]
    assert [(a["order_lines"], a["quantity"]) for a in package["aggregated_items"]] == [(["11"], 1), (["12"], 1)]
    assert shipment["address"]["first_name"] == "Ada"
    order = receiver.messages[1].params["order"]
    assert (order["status"], order["status_reason"]) == ("COMPLETE", "FULLYSHIPPED")
    lines = _lines(order)
    assert lines["11"]["status"] == "SHIPPED"
    assert lines["SHIPPING"]["status"] == "SHIPPED"
    assert lines["11"]["payments"][0]["status"] == "CAPTURE_REQUESTED"
    assert lines["11"]["custom_attributes"][0]["name"] == "gift"
    assert order["payments"][0]["transactions"][0]["amount"] == 205.0
    assert sandbox.api.order("000000001")["status"] == "COMPLETE"


def test_partial_ship_with_quantities_then_cancel(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params(qty=3))
    result = sandbox.api.ship("000000001", lines=[{"id": "11", "quantity": 2}])
    assert (result["order_status"], result["order_status_reason"]) == ("LOGISTICS", "PARTIALLYSHIPPED")
    shipment = receiver.wait_for(SHIPMENT_DONE)[0].params["shipment"]
    assert shipment["packages"][0]["aggregated_items"][0]["quantity"] == 2
    assert _lines(receiver.wait_for(UPDATED)[0].params["order"])["11"]["status"] == "NEW"
    result = sandbox.api.cancel_lines("000000001", lines=["12"])
    assert result["order_status"] == "LOGISTICS"
    assert _lines(receiver.wait_for(UPDATED, 2)[1].params["order"])["12"]["status"] == "CANCELLED"
    result = sandbox.api.ship("000000001", lines=["11"])
    assert result["order_status"] == "COMPLETE"
    assert _lines(sandbox.api.order("000000001"))["11"]["qty_shipped"] == 3


def test_cancel_all_and_set_status(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    assert sandbox.api.cancel_lines("000000001")["order_status"] == "CANCELLED"
    order = receiver.wait_for(UPDATED)[0].params["order"]
    assert order["status"] == "CANCELLED"
    assert all(ln["status"] == "CANCELLED" for ln in order["lines"])
    sandbox.api.set_status("000000001", "ONHOLD", "PENDING_REMORSE_TIME")
    order = receiver.wait_for(UPDATED, 2)[1].params["order"]
    assert (order["status"], order["status_reason"]) == ("ONHOLD", "PENDING_REMORSE_TIME")


def test_bad_action_input_is_a_clear_error(sandbox: SandboxServer, bus: Bus) -> None:
    bus.ok("magento.sales.order_management.create", order_params())
    for call, status in ((lambda: sandbox.api.ship("nope"), 404),
                         (lambda: sandbox.api.ship("000000001", lines=["zz"]), 400),
                         (lambda: sandbox.api.ship("000000001", lines=[{"id": "11", "quantity": 5}]), 400),
                         (lambda: sandbox.api.stock_snapshot("default", "SOME"), 400),
                         (lambda: sandbox.api.approve_return("RMA-CS-nope-1"), 404)):
        with pytest.raises(SandboxError) as caught:
            call()
        assert caught.value.status == status
        assert caught.value.body["error"]


def test_stock_snapshot_splits_at_10000(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver, [STOCK])
    items = [{"sku": f"SKU-{i:05d}", "quantity": i % 7} for i in range(10_001)]
    items[0]["unlimited"] = True
    result = sandbox.api.stock_snapshot("default", "FULL", items, created_on="2024-05-01 10:00:00")
    assert result["messages"] == 2
    assert all(d["status"] == "SUCCESS" for d in result["deliveries"])
    first, second = (m.params["snapshot"] for m in receiver.wait_for(STOCK, 2))
    assert len(first["stock"]) == 10_000
    assert len(second["stock"]) == 1
    assert first["aggregate_id"] == "default"
    assert first["mode"] == "FULL"
    assert first["created_on"] == "2024-05-01 10:00:00"
    assert first["stock"][0] == {"sku": "SKU-00000", "quantity": 0, "unlimited": True}
    assert second["stock"] == [{"sku": "SKU-10000", "quantity": 10_000 % 7}]
    for message in receiver.messages:
        assert_signed(message)


def test_stock_snapshot_from_inventory(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    sandbox.api.add_source("WH2", aggregate_ids=["default"])
    sandbox.api.set_inventory("WH1", [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 0}])
    sandbox.api.set_inventory("WH2", [{"sku": "A", "quantity": 3}])
    sandbox.api.stock_snapshot("default", "NONZERO")
    assert receiver.wait_for(STOCK)[0].params["snapshot"]["stock"] == [{"sku": "A", "quantity": 5}]


def test_return_requested_approved_refunded(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    sandbox.api.ship("000000001")
    result = bus.ok("magento.postsales.return_management.authorize", {"return": {
        "order_id": "000000001", "sales_channel_id": "default", "source_id": "WH1",
        "lines": [{"id": "11", "line_number": 1, "sku": "24-MB01", "reason": "DAMAGED", "condition": "used"}]}})
    rma = result["rma"]
    assert rma == "RMA-CS-000000001-1"
    requested = receiver.wait_for(RETURN_UPDATED)[0]
    assert_signed(requested)
    ret = requested.params["return"]
    assert ret["rma"] == rma
    assert ret["status"]["code"] == "REQUESTED"
    assert ret["status"]["reason_code"] == "CSRREQUEST"
    assert ret["lines"][0]["id"] == "11"
    assert ret["lines"][0]["status"] == "REQUESTED"

    assert sandbox.api.approve_return(rma)["deliveries"][0]["status"] == "SUCCESS"
    assert receiver.wait_for(RETURN_UPDATED, 2)[1].params["return"]["status"]["name"] == "APPROVED"
    refund = sandbox.api.refund(rma)
    assert refund["credit_note_number"] == "CDE1"
    message = receiver.wait_for(REFUND_UPDATED)[0]
    assert_signed(message)
    doc = message.params["refund"]
    assert doc["rma"] == rma
    assert doc["order_id"] == "000000001"
    assert doc["status"]["code"] == "RELEASED"
    assert doc["refund_type"] == "Return"
    assert doc["credit_note_number"] == "CDE1"
    (line,) = doc["lines"]
    assert line["order_item_id"] == "11"
    assert line["order_line"] == 1
    details = line["payments"][0]["details"]
    assert (details["cost_gross"], details["cost_net"], details["cost_vat"], details["vat_rate"]) == (
        100.0, 84.03, 15.97, 19.0)
    assert line["payments"][0]["status"]["name"] == "REFUNDED"
    assert sandbox.api.returns()[0]["refund_status"] == "RELEASED"
    second = bus.ok("magento.postsales.return_management.authorize", {"return": {
        "order_id": "000000001", "lines": [{"sku": "24-MB04"}]}})
    assert second["rma"] == "RMA-CS-000000001-2"
    # its REQUESTED is delivered after the answer, in the background: wait for it, or the
    # REJECTED (delivered while the action runs) may arrive first
    assert receiver.wait_for(RETURN_UPDATED, 3)[2].params["return"]["status"]["code"] == "REQUESTED"
    sandbox.api.reject_return(second["rma"])
    assert receiver.wait_for(RETURN_UPDATED, 4)[3].params["return"]["status"]["code"] == "REJECTED"


def test_request_shipping_details_records_packages(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    receiver.answers["magento.logistics.carrier_management.request_shipping_details"] = [
        {"id": 1, "items": ["11", "12"], "carrier": "DHL", "tracking_number": "TN1", "tracking_link": "http://t/1"}]
    result = sandbox.api.request_shipping_details("000000001")
    assert result["packages"][0]["tracking_number"] == "TN1"
    sent = receiver.messages[0].params["shipment"]
    assert sent["packages"][0]["items"] == ["11", "12"]
    assert sent["items"][0]["status"] == "ASSIGNED"
    assert sandbox.api.order("000000001")["shipping_details"][0]["packages"][0]["tracking_number"] == "TN1"


def test_request_shipment(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    result = sandbox.api.request_shipment("000000001")
    params = receiver.wait_for("magento.logistics.warehouse_management.request_shipment")[0].params
    assert params["request_id"] == result["request_id"]
    assert params["order_id"] == "000000001"
    assert params["sales_channel"] == "default"
    assert params["source_id"] == "WH1"
    assert [i["status_reason"] for i in params["items"]] == ["ITEM_PENDING_PICKING"] * 2
    assert params["billing_address"]["email"] == "ada@example.test"


def test_topic_routing(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    other = Receiver(url=receiver.url + "?other")  # same server, distinguishable by path
    bus.register(receiver, [STOCK], app_id="stock")
    bus.register(other, [UPDATED], app_id="sales")
    bus.ok("magento.sales.order_management.create", order_params())
    sandbox.api.set_status("000000001", "RECEIVED", "IMPORTED")
    sandbox.api.stock_snapshot("default", "DELTA", [{"sku": "A", "quantity": 1}])
    assert [(m.path.endswith("?other"), m.method) for m in receiver.messages] == [(True, UPDATED), (False, STOCK)]


def test_failed_delivery_is_journaled_and_redelivered(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver)
    bus.ok("magento.sales.order_management.create", order_params())
    receiver.status = 500
    result = sandbox.api.set_status("000000001", "ONHOLD")
    (delivery,) = result["deliveries"]
    assert delivery["status"] == "ERROR"
    assert delivery["http_status"] == 500
    (entry,) = sandbox.api.journal(method=UPDATED, status="ERROR")
    assert entry["direction"] == "outgoing"
    assert entry["error"].startswith("HTTP 500")
    receiver.status = 200
    again = sandbox.api.redeliver(entry["id"])["deliveries"][0]
    assert again["status"] == "SUCCESS"
    assert again["message_id"] == delivery["message_id"]
    assert receiver.messages[0].body == receiver.messages[1].body
    bus.ok("magento.service_bus.remote.unregister", {"id": "mdc"}, path="")
    receiver.url = "http://127.0.0.1:9/unreachable"
    bus.register(receiver)
    lost = sandbox.api.set_status("000000001", "ONHOLD")["deliveries"][0]
    assert lost["status"] == "ERROR"
    assert lost["http_status"] is None
    assert lost["error"]
