"""Table-driven tests of the pure catalog mappers (§8.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from mcom.catalog import mappers
from mcom.catalog.mappers import Channel


@dataclass
class P:
    sku: str = "SKU-1"
    name: str = "Blue shirt"
    type: str = "simple"
    enabled: bool = True
    custom_attributes: Any = field(default_factory=dict)
    children_skus: Any = field(default_factory=list)
    price: Decimal = Decimal("19.9900")
    weight: Decimal | None = None
    url_key: str = "blue-shirt"
    image_url: str = ""
    manage_stock: bool = True


def test_simple_product_spec_has_every_field_of_the_protocol() -> None:
    spec = mappers.product_spec(P(), channels=(Channel("web", "en_US"), Channel("nl", "nl_NL")))
    assert spec.to_params() == {
        "product": {
            "sku": "SKU-1",
            "id": "SKU-1",
            "type": "simple",
            "name": [
                {"value": "Blue shirt", "channel": "web", "locale": "en_US"},
                {"value": "Blue shirt", "channel": "nl", "locale": "nl_NL"},
            ],
            "enabled": True,
            "status": "active",
            "custom_attributes": [],
            "children_skus": [],
        }
    }


@pytest.mark.parametrize(
    ("ptype", "children", "expected"),
    [
        ("configurable", ["A", "B"], ["A", "B"]),
        ("bundle", ["A"], ["A"]),
        ("simple", ["A"], []),  # only parents carry children
        ("virtual", [], []),
        ("configurable", None, []),
    ],
)
def test_children_skus_only_for_configurable_and_bundle(ptype: str, children: Any, expected: list[str]) -> None:
    spec = mappers.product_spec(P(type=ptype, children_skus=children))
    assert spec.to_json()["children_skus"] == expected
    assert spec.to_json()["type"] == ptype


@pytest.mark.parametrize(("enabled", "status"), [(True, "active"), (False, "inactive")])
def test_enabled_is_sent_as_bool_and_status(enabled: bool, status: str) -> None:
    out = mappers.product_spec(P(enabled=enabled)).to_json()
    assert (out["enabled"], out["status"]) == (enabled, status)


@pytest.mark.parametrize(
    ("attrs", "codes", "expected"),
    [
        ({"color": "blue", "size": "M"}, ["color"], [{"attribute_code": "color", "value": "blue"}]),
        ({"color": "blue"}, ["size", "color"], [{"attribute_code": "color", "value": "blue"}]),  # absent left out
        ({}, ["price"], [{"attribute_code": "price", "value": 19.99}]),  # product field, decimal → number
        ({}, ["url_key", "weight"], [{"attribute_code": "url_key", "value": "blue-shirt"}]),  # None weight left out
        ({"price": "special"}, ["price"], [{"attribute_code": "price", "value": "special"}]),  # custom wins
        ({"ean": 123}, ["ean", "ean"], [{"attribute_code": "ean", "value": 123}]),  # duplicates once
        ({"color": "blue"}, [], []),
    ],
)
def test_custom_attributes_are_the_configured_codes(attrs: dict[str, Any], codes: list[str], expected: Any) -> None:
    out = mappers.product_spec(P(custom_attributes=attrs), attribute_codes=codes).to_json()
    assert out["custom_attributes"] == expected


@pytest.mark.parametrize(
    ("stores", "expected"),
    [
        ([], [Channel("default", "en_US")]),
        ([("default", "WEB", "en_US")], [Channel("WEB", "en_US")]),
        ([("nl", "", "nl_NL")], [Channel("nl", "nl_NL")]),  # no channel id → store code
        ([("a", "WEB", "en_US"), ("b", "WEB", "en_US")], [Channel("WEB", "en_US")]),  # distinct
    ],
)
def test_channels_for_stores(stores: list[tuple[str, str, str]], expected: list[Channel]) -> None:
    assert list(mappers.channels_for(stores)) == expected


@pytest.mark.parametrize(
    ("code", "sku"),
    [
        ("flatrate_flatrate", "STANDARD"),
        ("FlatRate_anything", "STANDARD"),
        ("UPS_NextDayAirEarlyAM", "UPS-NextDayAirEarlyAM"),
        ("dhl_express_plus", "dhl-express_plus"),
        ("pickup", "pickup"),
    ],
)
def test_shipping_method_skus(code: str, sku: str) -> None:
    carrier, method = mappers.split_shipping_code(code)
    assert mappers.shipping_sku(carrier, method) == sku


def test_shipping_spec_is_a_product_of_type_shipping() -> None:
    out = mappers.shipping_spec(carrier="flatrate", method="flatrate", title="Flat Rate").to_json()
    assert out["sku"] == out["id"] == "STANDARD"
    assert out["type"] == "shipping"
    assert out["name"][0]["value"] == "Flat Rate"
    assert out["status"] == "active"
