"""REST intake under hostile input: values bounded to their columns, unstorable strings, brute force."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client

from mcom.commerce.models import Order, OrderItem, Product, StockItem

from .conftest import Api, basic, order_payload


def _errors(response: Any) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.content
    return [(e["loc"], e["msg"]) for e in response.json()["detail"]]


def test_huge_quantity_is_one_422_with_the_field_and_stores_nothing(api: Api, catalog: dict[str, Any]) -> None:
    r = api.post("/api/orders", json.dumps(order_payload(lines=[{"sku": "MUG", "qty": 1e9}])))
    (loc, _msg), = _errors(r)
    assert loc == ["body", "lines", 0, "qty"]
    assert Order.objects.count() == 0
    assert OrderItem.objects.count() == 0


def test_computed_row_total_beyond_the_column_is_refused(api: Api, catalog: dict[str, Any]) -> None:
    # each value fits its column; price × qty does not (99,999,999 × 50)
    body = order_payload(lines=[{"sku": "MUG", "qty": 99_999_999, "price": "50.00"}])
    (loc, msg), = _errors(api.post("/api/orders", json.dumps(body)))
    assert loc == ["body", "lines", 0, "qty"]
    assert "largest amount" in msg
    assert Order.objects.count() == 0


def test_order_total_beyond_the_column_is_refused(api: Api, catalog: dict[str, Any]) -> None:
    line = {"sku": "MUG", "qty": 1, "price": "60000000"}
    (loc, msg), = _errors(api.post("/api/orders", json.dumps(order_payload(lines=[line, line]))))
    assert loc == ["body", "lines"]
    assert "order total" in msg
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("line", "loc"),
    [
        ({"sku": "MUG", "qty": "1.5"}, ["body", "lines", 0, "qty"]),
        ({"sku": "TEE", "qty": "2.5", "children": [{"sku": "TEE-RED-M"}]}, ["body", "lines", 0, "qty"]),
        ({"sku": "KIT", "qty": 1, "children": [{"sku": "MUG", "qty": "0.5"}]}, ["body", "lines", 0, "children", 0, "qty"]),
    ],
)
def test_unit_products_refuse_fractional_quantities(api: Api, catalog: dict[str, Any], line: Any, loc: Any) -> None:
    (got, msg), = _errors(api.post("/api/orders", json.dumps(order_payload(lines=[line]))))
    assert got == loc
    assert "whole units" in msg
    assert Order.objects.count() == 0


def test_virtual_products_may_have_fractional_quantities(api: Api, catalog: dict[str, Any]) -> None:
    r = api.post("/api/orders", json.dumps(order_payload(lines=[{"sku": "WARRANTY", "qty": "1.5"}])))
    assert r.status_code == 201, r.content


def test_fractional_stock_of_a_simple_product_is_refused(api: Api, catalog: dict[str, Any]) -> None:
    (loc, msg), = _errors(api.put("/api/stock/MUG/agg_default", {"qty": "2.5"}))
    assert loc == ["body", "qty"]
    assert "whole units" in msg
    (loc, _), = _errors(api.put("/api/stock/MUG/agg_default", {"qty": 1e9}))
    assert loc == ["body", "qty"]
    assert not StockItem.objects.filter(product__sku="MUG", qty=2.5).exists()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "a\u0000b"}, ["body", "name"]),
        ({"name": "ok", "custom_attributes": {"x": ["\ud800"]}}, ["body", "custom_attributes", "x", 0]),
        ({"name": "ok", "custom_attributes": {"k\u0000": 1}}, ["body", "custom_attributes"]),
    ],
)
def test_unstorable_strings_anywhere_are_422_with_the_path(api: Api, catalog: dict[str, Any], body: Any, loc: Any) -> None:
    raw = json.dumps(body)  # ensure_ascii: \u0000 / \ud800 escapes, as a client would send them
    (got, _msg), = _errors(api.client.put("/api/products/NEW", raw, content_type="application/json", headers=api.headers))
    assert got == loc
    assert not Product.objects.filter(sku="NEW").exists()


def test_absurd_nesting_and_non_finite_numbers_are_refused(api: Api, catalog: dict[str, Any]) -> None:
    deep = "[" * 100 + "]" * 100
    raw = '{"name": "x", "custom_attributes": {"a": ' + deep + "}}"
    r = api.client.put("/api/products/NEW", raw, content_type="application/json", headers=api.headers)
    assert r.status_code == 422
    assert "nesting" in r.json()["detail"][0]["msg"]
    for number in ("NaN", "Infinity", "1e400"):
        raw = '{"name": "x", "custom_attributes": {"a": ' + number + "}}"
        r = api.client.put("/api/products/NEW", raw, content_type="application/json", headers=api.headers)
        assert r.status_code in (400, 422), (number, r.content)
    very_deep = '{"name": "x", "custom_attributes": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    r = api.client.put("/api/products/NEW", very_deep, content_type="application/json", headers=api.headers)
    assert r.status_code == 400
    assert not Product.objects.filter(sku="NEW").exists()


def test_nul_in_a_path_names_nothing(api: Api, catalog: dict[str, Any]) -> None:
    assert api.get("/api/products/a%00b").status_code == 404
    assert api.get("/api/orders/a%00b").status_code == 404
    assert api.put("/api/stock/MUG/a%00b", {"qty": 1}).status_code == 404
    (loc, _), = _errors(api.put("/api/products/a%00b", {"name": "x"}))
    assert loc == ["path", "sku"]


# ------------------------------------------------------------------------------ brute force


def test_rest_basic_auth_brute_force_is_locked_out_and_logged_without_the_password(
    catalog: dict[str, Any], fast_passwords: None, django_user_model: Any, settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    django_user_model.objects.create_superuser("boss", "boss@example.com", "Pa55-word-x")
    c = Client()
    limit = settings.AXES_FAILURE_LIMIT
    caplog.set_level(logging.INFO)
    codes = [c.get("/api/products/MUG", headers=basic("boss", f"guess-{n}-secret")).status_code for n in range(limit + 3)]
    assert codes[: limit - 1] == [401] * (limit - 1)
    assert set(codes[limit - 1 :]) == {429}
    locked = c.get("/api/products/MUG", headers=basic("boss", "Pa55-word-x"))
    assert locked.status_code == 429
    assert locked.json() == {"detail": "too many failed logins; try again later"}
    assert any("locked out" in r.getMessage() and "boss" in r.getMessage() for r in caplog.records)
    assert not any("guess-" in r.getMessage() for r in caplog.records)
    # another user from the same address is not locked out; a token still works
    django_user_model.objects.create_superuser("other", "o@example.com", "Pa55-word-o")
    assert c.get("/api/products/MUG", headers=basic("other", "Pa55-word-o")).status_code == 200


def test_admin_login_brute_force_is_locked_out(
    db: None, fast_passwords: None, django_user_model: Any, settings: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    django_user_model.objects.create_superuser("boss", "boss@example.com", "Pa55-word-x")
    c = Client()
    caplog.set_level(logging.INFO)
    for n in range(settings.AXES_FAILURE_LIMIT):
        c.post("/admin/login/", {"username": "boss", "password": f"wrong-{n}-pw"})
    r = c.post("/admin/login/", {"username": "boss", "password": "Pa55-word-x"})
    assert r.status_code == 429
    assert b"too many failed logins" in r.content
    assert "_auth_user_id" not in c.session
    assert not any("wrong-" in rec.getMessage() for rec in caplog.records)
