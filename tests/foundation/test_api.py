"""REST intake: orders, products, stock; field-level errors; auth; OpenAPI."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from mcom.commerce import hooks
from mcom.commerce.models import Order, OrderItem, Product, StockItem, StockStatus

from .conftest import ADDRESS, Api, basic, order_payload


def _locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.content
    return [e["loc"] for e in response.json()["detail"]]


# ------------------------------------------------------------------------------------- orders


def test_place_order_computes_totals(api: Api, catalog: dict[str, Any]) -> None:
    body = order_payload(
        lines=[
            {"sku": "MUG", "qty": 2, "tax_percent": "8.25", "custom_attributes": {"gift_wrap": True}},
            {"sku": "TEE", "qty": 1, "tax_percent": "8.25", "children": [{"sku": "TEE-RED-M"}],
             "discount_amount": "2.00"},
            {"sku": "KIT", "qty": 3, "price": "24.00", "tax_percent": "8.25"},
        ],
    )
    r = api.post("/api/orders", body)
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["increment_id"] == "000000001"
    assert data["status"] == "pending"
    assert data["state"] == "new"
    assert data["export_state"] == "not_exported"
    # MUG 19.98 (tax 1.65), TEE 20.00 - 2.00 (tax 1.49), KIT 72.00 (tax 5.94); shipping 5.00 (tax 0.41)
    assert Decimal(data["subtotal"]) == Decimal("111.98")
    assert Decimal(data["discount_amount"]) == Decimal("2.00")
    assert Decimal(data["shipping_tax_amount"]) == Decimal("0.41")
    assert Decimal(data["tax_amount"]) == Decimal("1.65") + Decimal("1.49") + Decimal("5.94") + Decimal("0.41")
    assert Decimal(data["grand_total"]) == Decimal("111.98") - 2 + Decimal("9.49") + 5
    by_sku = {i["sku"]: i for i in data["items"] if i["parent_id"] is None}
    assert list(by_sku) == ["MUG", "TEE", "KIT"]
    tee_children = [i["sku"] for i in data["items"] if i["parent_id"] == by_sku["TEE"]["id"]]
    assert tee_children == ["TEE-RED-M"]
    kit_children = [i for i in data["items"] if i["parent_id"] == by_sku["KIT"]["id"]]
    assert sorted((i["sku"], Decimal(i["qty_ordered"])) for i in kit_children) == [("MUG", 3), ("TEE-RED-M", 3)]
    assert by_sku["MUG"]["custom_attributes"] == {"gift_wrap": True}
    assert [a["address_type"] for a in data["addresses"]] == ["billing", "shipping"]
    assert data["status_history"][0]["comment"] == "Order placed"

    got = api.get(f"/api/orders/{data['increment_id']}")
    assert got.status_code == 200
    assert got.json()["grand_total"] == data["grand_total"]
    assert got.json()["shipments"] == []
    assert got.json()["credit_memos"] == []
    assert got.json()["rmas"] == []


def test_order_placed_hook_runs_after_commit(
    api: Api, catalog: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    seen: list[str] = []
    hooks.order_placed.append(lambda order: seen.append(order.increment_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = api.post("/api/orders", order_payload(increment_id="WEB-1"))
        assert r.status_code == 201
        assert seen == []  # not before commit
    for cb in callbacks:
        cb()
    assert seen == ["WEB-1"]


@pytest.mark.parametrize(
    ("change", "loc", "msg"),
    [
        ({"customer_email": None}, ["body", "customer_email"], ""),
        ({"customer_email": "not-an-email"}, ["body", "customer_email"], "e-mail"),
        ({"lines": []}, ["body", "lines"], "at least 1"),
        ({"lines": [{"qty": 1}]}, ["body", "lines", 0, "sku"], "Field required"),
        ({"lines": [{"sku": "MUG", "qty": "two"}]}, ["body", "lines", 0, "qty"], "decimal"),
        ({"lines": [{"sku": "MUG", "qty": -1}]}, ["body", "lines", 0, "qty"], "greater than 0"),
        ({"lines": [{"sku": "MUG", "qty": 0}]}, ["body", "lines", 0, "qty"], "greater than 0"),
        ({"lines": [{"sku": "MUG", "qty": 1, "price": "-3"}]}, ["body", "lines", 0, "price"], ""),
        ({"lines": [{"sku": "MUG", "qty": 1, "tax_percent": 120}]}, ["body", "lines", 0, "tax_percent"], ""),
        ({"lines": [{"sku": "MUG", "qty": 1, "colour": "red"}]}, ["body", "lines", 0, "colour"], "Extra"),
        ({"billing_address": {**ADDRESS, "country_id": "USA"}}, ["body", "billing_address", "country_id"], ""),
        ({"lines": [{"sku": "MUG", "qty": 1}, {"sku": "NOPE", "qty": 1}]}, ["body", "lines", 1, "sku"], "unknown sku 'NOPE'"),
        ({"lines": [{"sku": "OLD", "qty": 1}]}, ["body", "lines", 0, "sku"], "disabled"),
        ({"lines": [{"sku": "TEE", "qty": 1}]}, ["body", "lines", 0, "children"], "chosen child"),
        ({"lines": [{"sku": "TEE", "qty": 1, "children": [{"sku": "MUG"}]}]}, ["body", "lines", 0, "children", 0, "sku"], "not a child"),
        ({"lines": [{"sku": "MUG", "qty": 1, "children": [{"sku": "TEE"}]}]}, ["body", "lines", 0, "children"], "no children"),
        ({"lines": [{"sku": "MUG", "qty": 1, "discount_amount": 50}]}, ["body", "lines", 0, "discount_amount"], "larger"),
        ({"store": "nowhere"}, ["body", "store"], "unknown store"),
        ({"status": "shipped"}, ["body", "status"], "unknown order status"),
    ],
)
def test_malformed_orders_are_rejected_with_the_field(
    api: Api, catalog: dict[str, Any], change: dict[str, Any], loc: list[Any], msg: str
) -> None:
    body = order_payload(**change)
    body = {k: v for k, v in body.items() if v is not None}
    r = api.post("/api/orders", body)
    assert loc in _locs(r), r.json()
    assert msg in " ".join(e["msg"] for e in r.json()["detail"])
    assert not Order.objects.exists()


def test_unparseable_body(api: Api, catalog: dict[str, Any]) -> None:
    r = api.client.post("/api/orders", "{nope", content_type="application/json", headers=api.headers)
    assert r.status_code == 400
    assert "detail" in r.json()


def test_duplicate_increment_id(api: Api, catalog: dict[str, Any]) -> None:
    assert api.post("/api/orders", order_payload(increment_id="X-1")).status_code == 201
    r = api.post("/api/orders", order_payload(increment_id="X-1"))
    assert _locs(r) == [["body", "increment_id"]]
    assert Order.objects.count() == 1


def test_status_change_and_guard_refusal(api: Api, catalog: dict[str, Any]) -> None:
    inc = api.post("/api/orders", order_payload()).json()["increment_id"]
    r = api.post(f"/api/orders/{inc}/status", {"status": "holded", "comment": "customer called"})
    assert r.status_code == 200
    assert r.json()["status"] == "holded"
    assert r.json()["state"] == "holded"
    assert r.json()["status_history"][-1]["comment"] == "customer called"

    def refuse(order: Order, status: str) -> None:
        raise hooks.ChangeRefused(f"order {order.increment_id} is exported; its status comes from the OMS")

    hooks.order_status_guard.append(refuse)
    r = api.post(f"/api/orders/{inc}/status", {"status": "canceled"})
    assert r.status_code == 409
    assert r.json() == {"detail": f"order {inc} is exported; its status comes from the OMS"}
    assert Order.objects.get(increment_id=inc).status == "holded"
    assert api.post("/api/orders/NOPE/status", {"status": "canceled"}).status_code == 404
    assert api.get("/api/orders/NOPE").status_code == 404


# ------------------------------------------------------------------------------------- products


def test_put_and_get_product(api: Api, catalog: dict[str, Any]) -> None:
    saved: list[list[str]] = []
    hooks.products_saved.append(lambda products: saved.append([p.sku for p in products]))
    r = api.put("/api/products/CAP", {"name": "Cap", "price": "12.50", "weight": "0.1",
                                      "custom_attributes": {"color": "Navy"}})
    assert r.status_code == 200, r.content
    assert r.json()["sku"] == "CAP"
    assert Decimal(r.json()["price"]) == Decimal("12.5")
    r = api.put("/api/products/CAP", {"name": "Cap v2", "price": "13"})
    assert r.json()["name"] == "Cap v2"
    assert r.json()["custom_attributes"] == {}
    assert saved == [["CAP"], ["CAP"]]
    assert Product.objects.filter(sku="CAP").count() == 1
    r = api.get("/api/products/TEE")
    assert r.json()["type"] == "configurable"
    assert r.json()["children_skus"] == ["TEE-RED-M", "TEE-BLUE-M"]
    assert api.get("/api/products/NOPE").status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"price": 1}, ["body", "name"]),
        ({"name": "X", "price": "cheap"}, ["body", "price"]),
        ({"name": "X", "price": -1}, ["body", "price"]),
        ({"name": "X", "type": "service"}, ["body", "type"]),
        ({"name": "X", "children_skus": ["MUG"]}, ["body", "children_skus"]),
        ({"name": "X", "type": "bundle", "children_skus": ["MUG", "NOPE"]}, ["body", "children_skus", 1]),
        ({"name": "X", "enabled": "sometimes"}, ["body", "enabled"]),
    ],
)
def test_malformed_product_rejected(api: Api, catalog: dict[str, Any], body: dict[str, Any], loc: list[Any]) -> None:
    r = api.put("/api/products/NEW-1", body)
    assert loc in _locs(r), r.json()
    assert not Product.objects.filter(sku="NEW-1").exists()


def test_bulk_upsert(api: Api, catalog: dict[str, Any]) -> None:
    items = [{"sku": f"BULK-{i}", "name": f"Bulk {i}", "price": i} for i in range(1500)]
    items.append({"sku": "MUG", "name": "Mug renamed", "price": "9.99"})
    items.append({"sku": "BULK-SET", "name": "Set", "type": "bundle", "children_skus": ["BULK-1", "MUG"]})
    r = api.post("/api/products/bulk", {"items": items})
    assert r.status_code == 200, r.content[:500]
    assert r.json()["created"] == 1501
    assert r.json()["updated"] == 1
    assert Product.objects.get(sku="MUG").name == "Mug renamed"
    r = api.post("/api/products/bulk", {"items": [{"sku": "A", "name": "A"}, {"sku": "A", "name": "B"},
                                                  {"sku": "C", "name": "C", "price": "x"}]})
    assert _locs(r) == [["body", "items", 2, "price"]]
    r = api.post("/api/products/bulk", {"items": [{"sku": "A", "name": "A"}, {"sku": "A", "name": "B"}]})
    assert _locs(r) == [["body", "items", 1, "sku"]]
    r = api.post("/api/products/bulk", {"items": []})
    assert _locs(r) == [["body", "items"]]


def test_bulk_limit(api: Api, db: None) -> None:
    items = [{"sku": f"S{i}", "name": "n"} for i in range(10_001)]
    r = api.post("/api/products/bulk", {"items": items})
    assert _locs(r) == [["body", "items"]]
    assert "10000" in r.json()["detail"][0]["msg"]


# ------------------------------------------------------------------------------------- stock


def test_stock_edit_reindexes_and_guard(api: Api, catalog: dict[str, Any]) -> None:
    r = api.put("/api/stock/MUG/agg_default", {"qty": 7})
    assert r.status_code == 200, r.content
    assert r.json()["is_in_stock"] is True
    assert r.json()["stock_status"] is True
    assert StockItem.objects.get(product__sku="MUG").qty == 7
    r = api.put("/api/stock/MUG/agg_default", {"qty": 0})
    assert r.json()["stock_status"] is False
    assert StockStatus.objects.get(product__sku="MUG").stock_status is False
    stock = api.get("/api/products/MUG").json()["stock"]
    assert stock == [{"aggregate": "agg_default", "qty": "0.0000", "is_in_stock": False, "stock_status": False,
                      "updated_at": stock[0]["updated_at"]}]

    assert _locs(api.put("/api/stock/MUG/agg_default", {"qty": -1})) == [["body", "qty"]]
    assert api.put("/api/stock/MUG/nowhere", {"qty": 1}).status_code == 404
    assert api.put("/api/stock/NOPE/agg_default", {"qty": 1}).status_code == 404

    def refuse(product: Product) -> None:
        raise hooks.ChangeRefused("stock is managed by the OMS in production mode")

    hooks.stock_edit_guard.append(refuse)
    r = api.put("/api/stock/MUG/agg_default", {"qty": 5})
    assert r.status_code == 409
    assert r.json()["detail"] == "stock is managed by the OMS in production mode"
    assert StockItem.objects.get(product__sku="MUG").qty == 0


# ------------------------------------------------------------------------------------- auth


def test_anonymous_and_bad_credentials_get_401(catalog: dict[str, Any]) -> None:
    c = Client()
    assert c.get("/api/products/MUG").status_code == 401
    assert c.post("/api/orders", json.dumps(order_payload()), content_type="application/json").status_code == 401
    assert c.put("/api/stock/MUG/agg_default", '{"qty": 1}', content_type="application/json").status_code == 401
    assert c.get("/api/products/MUG", headers={"Authorization": "Bearer mcom_wrong"}).status_code == 401
    assert c.get("/api/products/MUG", headers={"Authorization": "Bearer"}).status_code == 401
    assert c.get("/api/products/MUG", headers=basic("admin", "nope")).status_code == 401
    assert not Order.objects.exists()


def test_revoked_token(catalog: dict[str, Any]) -> None:
    from mcom.commerce import tokens

    _, token = tokens.create_token(name="ci")
    c = Client()
    assert c.get("/api/products/MUG", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    tokens.revoke_token(name="ci")
    assert c.get("/api/products/MUG", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_basic_auth_with_admin_user(catalog: dict[str, Any], fast_passwords: None, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("boss", "boss@example.com", "Pa55-word-x")
    django_user_model.objects.create_user("viewer", "v@example.com", "Pa55-word-y", is_staff=True)
    django_user_model.objects.create_user("shopper", "s@example.com", "Pa55-word-z")
    c = Client()
    assert c.get("/api/products/MUG", headers=basic("boss", "Pa55-word-x")).status_code == 200
    r = c.post("/api/orders", json.dumps(order_payload()), content_type="application/json",
               headers=basic("boss", "Pa55-word-x"))
    assert r.status_code == 201
    # staff without change permissions may read, not write; non-staff may do neither
    assert c.get("/api/products/MUG", headers=basic("viewer", "Pa55-word-y")).status_code == 200
    r = c.put("/api/products/MUG", '{"name": "x"}', content_type="application/json",
              headers=basic("viewer", "Pa55-word-y"))
    assert r.status_code == 403
    assert c.get("/api/products/MUG", headers=basic("shopper", "Pa55-word-z")).status_code == 401
    assert OrderItem.objects.count() == 1


def test_token_command_prints_token_once(db: None) -> None:
    from click.testing import CliRunner

    from mcom.cli.main import main
    from mcom.commerce.models import ApiToken

    r = CliRunner().invoke(main, ["api:token:create", "--name", "erp"])
    assert r.exit_code == 0, r.output
    token = r.output.splitlines()[0]
    assert token.startswith("mcom_")
    assert len(token) > 40
    row = ApiToken.objects.get(name="erp")
    assert row.token_hash != token
    assert token not in row.prefix + row.token_hash
    assert Client().get("/api/orders/none", headers={"Authorization": f"Bearer {token}"}).status_code == 404
    r = CliRunner().invoke(main, ["api:token:create", "--name", "erp"])
    assert r.exit_code == 1
    assert "already exists" in r.output
    r = CliRunner().invoke(main, ["api:token:list"])
    assert "erp" in r.output
    assert token not in r.output


def test_openapi_document(db: None) -> None:
    c = Client()
    r = c.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    paths = doc["paths"]
    for path in ("/api/orders", "/api/orders/{increment_id}", "/api/orders/{increment_id}/status",
                 "/api/products/{sku}", "/api/products/bulk", "/api/stock/{sku}/{aggregate}"):
        assert path in paths, sorted(paths)
    schemes = doc["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"bearer", "basic"}
    assert c.get("/api/docs").status_code == 200
