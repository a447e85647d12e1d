"""JSON-RPC dispatch, registration, order/product intake and source search, over real HTTP."""

from __future__ import annotations

import httpx

from mcom.sandbox.testing import SandboxServer

from .conftest import Bus, Receiver, order_params

REGISTER = "magento.service_bus.remote.register"
CREATE = "magento.sales.order_management.create"


def test_register_replace_and_unregister(sandbox: SandboxServer, bus: Bus, receiver: Receiver) -> None:
    bus.register(receiver, ["magento.sales.order_management.updated"])
    bus.ok(REGISTER, {"id": "mdc", "url": receiver.url + "?v=2", "secret": "s", "topics": ["a.b"],
                      "labels": {"region": "eu"}, "version": "0.1.0"}, path="")
    regs = sandbox.api.registrations()
    assert len(regs) == 1
    assert regs[0]["url"].endswith("?v=2")
    assert regs[0]["subscribes"] == ["a.b"]
    assert regs[0]["labels"] == {"region": "eu"}
    assert regs[0]["extra"] == {"version": "0.1.0"}
    assert "secret" not in str(regs)
    logged = sandbox.api.journal(method=REGISTER)
    assert logged[0]["payload"]["params"]["secret"] == "***"
    assert "receiver-secret" not in str(logged)
    bus.ok("magento.service_bus.remote.unregister", {"id": "mdc"}, path="")
    assert sandbox.api.registrations() == []


def test_register_rejects_empty_url_or_id(bus: Bus) -> None:
    for params in ({"id": "mdc", "url": "", "secret": "s"}, {"id": "", "url": "http://x/", "secret": "s"}):
        doc = bus.call(REGISTER, params, path="").json()
        assert doc["error"]["code"] == -32602


def test_order_create_and_duplicate(sandbox: SandboxServer, bus: Bus) -> None:
    assert bus.ok(CREATE, order_params())["duplicate"] is False
    assert bus.ok(CREATE, order_params())["duplicate"] is True
    assert len(sandbox.api.orders()) == 1
    order = sandbox.api.order("000000001")
    assert order["status"] == "NEW"
    assert order["store"] == "default"
    assert [ln["id"] for ln in order["lines"]] == ["11", "12", "SHIPPING"]
    assert order["payload"]["custom_attributes"] == [{"attribute_code": "channel", "value": "web"}]
    entries = sandbox.api.journal(method=CREATE, direction="incoming")
    assert len(entries) == 2
    assert all(e["status"] == "SUCCESS" for e in entries)
    assert entries[0]["note"].startswith("duplicate")
    assert entries[0]["payload"]["params"]["order"]["id"] == "000000001"


def test_dispatch_is_by_method_on_any_path(bus: Bus) -> None:
    for path in ("", "remote/oms", "delegate/oms", "events"):
        result = bus.ok("magento.inventory.source_repository.search", {}, path=path)
        assert result["total"] == 1


def test_source_search_shape(bus: Bus) -> None:
    result = bus.ok("magento.inventory.source_repository.search", {}, path="remote/oms")
    assert result["offset"] == 0
    assert result["size"] == 1000
    assert result["total"] == 1
    (item,) = result["items"]
    assert item["id"] == "WH1"
    assert item["type"] == "Warehouse"
    assert item["aggregate_ids"] == ["default"]
    assert item["address"]["address_type"] == "source"
    assert item["configurations"]["capabilities"]["fulfillment"] == {"can_ship_to_source": False}


def test_product_upsert_keeps_payload(sandbox: SandboxServer, bus: Bus) -> None:
    product = {"sku": "CONF-1", "type": "configurable", "name": [{"value": "Tee", "channel": "default"}],
               "enabled": True, "children_skus": ["CONF-1-S"], "custom_attributes": [{"attribute_code": "color",
                                                                                      "value": "red"}]}
    bus.ok("magento.catalog.product_management.updated", {"product": product}, path="events")
    bus.ok("magento.catalog.product_management.updated", {"product": {**product, "enabled": False}}, path="events")
    (row,) = sandbox.api.products()
    assert row["sku"] == "CONF-1"
    assert row["name"] == "Tee"
    assert row["enabled"] is False
    full = sandbox.api.product("CONF-1")
    assert full["children_skus"] == ["CONF-1-S"]
    assert full["custom_attributes"][0]["value"] == "red"


def test_json_rpc_errors(sandbox: SandboxServer, bus: Bus) -> None:
    unknown = bus.call("magento.nope", {})
    assert unknown.status_code == 200
    assert unknown.json()["error"]["code"] == -32601
    assert unknown.json()["id"] == "c1"
    assert bus.call(CREATE, [1, 2]).json()["error"]["code"] == -32602
    assert bus.call(CREATE, {"order": {"id": "1"}}).json()["error"]["code"] == -32602
    assert bus.call(CREATE, {"order": {"id": "1", "lines": [{"id": "a"}]}}).json()["error"]["code"] == -32602
    assert bus.call("magento.catalog.product_management.updated", {"product": {}}).json()["error"]["code"] == -32602
    headers = {"Authorization": f"Bearer {bus.token}", "Content-Type": "application/json"}
    malformed = httpx.post(sandbox.url + "delegate/oms", content=b"{nope", headers=headers)
    assert malformed.json() == {"jsonrpc": "2.0", "id": None,
                                "error": {"code": -32700, "message": malformed.json()["error"]["message"]}}
    for bad in (b"[]", b"42", b'{"id": 1}', b'{"jsonrpc": "1.0", "method": "x", "id": 1}'):
        doc = httpx.post(sandbox.url + "delegate/oms", content=bad, headers=headers).json()
        assert doc["error"]["code"] == -32600, bad
    errors = sandbox.api.journal(status="ERROR", direction="incoming")
    assert len(errors) >= 8


def test_return_for_unknown_order_is_invalid_params(bus: Bus) -> None:
    doc = bus.call("magento.postsales.return_management.authorize",
                   {"return": {"order_id": "404", "lines": [{"id": "1"}]}}).json()
    assert doc["error"]["code"] == -32602
