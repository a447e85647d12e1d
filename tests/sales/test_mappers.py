"""Pure mapper tests (no database): order → ``order_management.create`` params, table-driven, plus the
OMS → order direction (status mapping, shipment line resolution)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.sales.conftest import D, unit_addresses, unit_item, unit_order, unit_store

from mcom.commerce.models import Order, Product
from mcom.sales import mappers, messages
from mcom.sales.mappers import MappingError, allocate, map_order_status

DATA = Path(__file__).parent / "data"


def pick(doc: Any, path: str) -> Any:
    """``pick(params, "order.lines[0].amount.gross_amount")``."""
    for part in path.replace("]", "").replace("[", ".").split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def spec_params(order: Order, items: list[Any], *, same_address: bool = False, **kw: Any) -> dict[str, Any]:
    return mappers.order_to_specification(
        order, items=items, addresses=unit_addresses(order, same=same_address), sales_channel_id="web-eu", **kw
    ).to_params()


def test_simple_order_matches_the_recorded_payload() -> None:
    """Guest order, qty 2 expanded to two lines, a discounted line with a coupon, VAT, flat-rate shipping."""
    order = unit_order(customer_id="", custom_attributes={"gift_message": "Happy birthday", "coupon_code": "SPRING"})
    product = Product(pk=5, sku="SKU-A", name="Alpha", price=D("10.00"), url_key="alpha",
                      image_url="https://img.example/a.jpg")
    items = [unit_item(101, "SKU-A", 2, "10.00", product=product, custom_attributes={"engraving": "A.L."}),
             unit_item(102, "SKU-B", 1, "25.00", discount="5.00")]
    order.grand_total = D("53.55")
    expected = json.loads((DATA / "order_simple.json").read_text())
    assert spec_params(order, items) == expected


def _gross_sum(params: dict[str, Any]) -> Decimal:
    return sum((Decimal(str(ln["amount"]["gross_amount"])) for ln in params["order"]["lines"]), Decimal(0))


def _bundle() -> tuple[Order, list[Any]]:
    order = unit_order(shipping_amount=D("0"), shipping_tax_amount=D("0"))
    kit = unit_item(200, "KIT", 2, "30.00", product_type="bundle")
    cam = unit_item(201, "CAM", 2, "0", parent_id=200, priced=False,
                    product=Product(pk=11, sku="CAM", name="Camera", price=D("40.00")))
    strap = unit_item(202, "STRAP", 4, "0", parent_id=200, priced=False,
                      product=Product(pk=12, sku="STRAP", name="Strap", price=D("5.00")))
    return order, [kit, cam, strap]


def _configurable() -> tuple[Order, list[Any]]:
    order = unit_order()
    parent = unit_item(300, "TEE", 1, "20.00", product_type="configurable", name="T-shirt")
    child = unit_item(301, "TEE-M-RED", 1, "0", parent_id=300, priced=False, name="T-shirt M red")
    return order, [parent, child]


CASES: list[tuple[str, Any, dict[str, Any]]] = [
    ("registered customer", lambda: (unit_order(customer_id="c-77"), [unit_item(1, "A", 1, "10")]), {
        "order.customer": {"id": "c-77", "type": "REGISTERED", "segment": "B2C"},
        "order.lines[0].id": "1",
    }),
    ("guest customer", lambda: (unit_order(customer_id=""), [unit_item(1, "A", 1, "10")]), {
        "order.customer": {"id": "anonymous", "type": "GUEST", "segment": "B2C"},
    }),
    ("no tax → NO TAX", lambda: (unit_order(shipping_tax_amount=D("0")),
                                 [unit_item(1, "A", 1, "10", tax_percent="0")]), {
        "order.lines[0].amount.taxes": [{"type": "NO TAX", "amount": 0.0, "rate": 0.0}],
        "order.lines[0].amount.gross_amount": 10.0,
        "order.lines[1].amount.taxes": [{"type": "NO TAX", "amount": 0.0, "rate": 0.0}],
    }),
    ("VAT 7 %", lambda: (unit_order(), [unit_item(1, "A", 1, "10", tax_percent="7")]), {
        "order.lines[0].amount": {"net_amount": 10.0, "gross_amount": 10.7, "tax_amount": 0.7, "tax_rate": 7.0,
                                  "currency": "EUR", "taxes": [{"type": "VAT", "amount": 0.7, "rate": 7.0}]},
    }),
    ("qty 3 split to the cent", lambda: (unit_order(), [unit_item(9, "A", 3, "3.33", tax_percent="0",
                                                                  discount="1.00")]), {
        "order.lines[0].id": "9-1", "order.lines[2].id": "9-3", "order.lines[2].line_number": 3,
        "order.lines[0].amount.net_amount": 3.0, "order.lines[2].amount.net_amount": 2.99,  # 8.99 / 3
        "order.lines[0].promotions_info.promotions[0].discount": 0.33,
        "order.lines[2].promotions_info.promotions[0].discount": 0.34,
        "order.lines[3].id": "SHIPPING",
    }),
    ("virtual → SERVICE, no shipping line", lambda: (unit_order(shipping_amount=D("0"), shipping_tax_amount=D("0")),
                                                     [unit_item(1, "EBOOK", 1, "9.99", product_type="virtual")]), {
        "order.lines[0].product_type": "SERVICE", "order.lines.__len__": 1,
    }),
    ("gift card → SERVICE", lambda: (unit_order(), [unit_item(1, "GC50", 1, "50", product_type="giftcard",
                                                               tax_percent="0")]), {
        "order.lines[0].product_type": "SERVICE", "order.lines[1].id": "SHIPPING",
    }),
    ("carrier shipping method SKU", lambda: (unit_order(shipping_method="ups_NextDayAir", shipping_description=""),
                                             [unit_item(1, "A", 1, "10")]), {
        "order.lines[1].sku": "ups-NextDayAir", "order.lines[1].product_type": "SHIPPING",
        "order.lines[1].product_name": "Shipping",
    }),
    ("bundle children as lines", _bundle, {
        "order.lines.__len__": 7,  # 2 cameras + 4 straps (no bundle line) + shipping (physical goods)
        "order.lines[0].sku": "CAM", "order.lines[0].id": "201-1", "order.lines[0].parent_line_id": "200",
        "order.lines[2].sku": "STRAP", "order.lines[2].parent_line_id": "200",
        "order.lines[0].custom_attributes": [{"attribute_code": "bundle_sku", "value": "KIT"}],
        # 60.00 net + 11.40 tax spread by catalog price: camera units 40/(2*40+4*5) of it
        "order.lines[0].amount.net_amount": 24.0, "order.lines[2].amount.net_amount": 3.0,
        "order.lines[6].id": "SHIPPING", "order.lines[6].amount.gross_amount": 0.0,
    }),
    ("configurable → child sku, parent name and price", _configurable, {
        "order.lines[0].sku": "TEE-M-RED", "order.lines[0].product_name": "T-shirt", "order.lines[0].id": "300",
        "order.lines[0].amount.net_amount": 20.0, "order.lines.__len__": 2,
    }),
    ("same billing and shipping address", lambda: (unit_order(), [unit_item(1, "A", 1, "10")]), {
        "order.addresses.__len__": 1, "order.lines[0].shipping_address_reference": "7",
        "order.payments[0].transactions[0].billing_address_reference": "7", "order.vat_country": "GB",
    }),
    ("payment and transaction id", lambda: (unit_order(payment_method="banktransfer",
                                                       payment_transaction_id="T-99"), [unit_item(1, "A", 1, "10")]), {
        "order.payments[0].transactions[0].gateway_information.transaction_id": "T-99",
        "order.payments[0].transactions[0].gateway_information.custom_attributes[0].value": "banktransfer",
        "order.payments[0].transactions[0].gateway_information.authorization_status": "AUTHORIZED",
    }),
    ("order and line custom attributes", lambda: (unit_order(custom_attributes={"b": 2, "a": {"x": True}}),
                                                  [unit_item(1, "A", 1, "10", custom_attributes={"flag": True})]), {
        "order.custom_attributes": [{"attribute_code": "a", "value": '{"x":true}'},
                                    {"attribute_code": "b", "value": "2"}],
        "order.lines[0].custom_attributes": [{"attribute_code": "flag", "value": "1"}],
    }),
    ("store locale and sales channel", lambda: (unit_order(unit_store(locale="fr_FR")), [unit_item(1, "A", 1, "10")]), {
        "order.language": "fr_FR", "order.store": "web-eu", "order.origin": "FRONTEND",
        "order.status": None, "order.status_reason": None,
    }),
]


@pytest.mark.parametrize(("name", "build", "expected"), CASES, ids=[c[0] for c in CASES])
def test_order_mapping_table(name: str, build: Any, expected: dict[str, Any]) -> None:
    order, items = build()
    same = name == "same billing and shipping address"
    params = spec_params(order, items, same_address=same)
    for path, value in expected.items():
        if path.endswith(".__len__"):
            assert len(pick(params, path.removesuffix(".__len__"))) == value, path
        else:
            assert pick(params, path) == value, path


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_lines_add_up_to_the_order_total(build: Any) -> None:
    order, items = build()
    order.grand_total = (sum((i.row_total - i.discount_amount + i.tax_amount for i in items), Decimal(0))
                         + order.shipping_amount + order.shipping_tax_amount)
    params = spec_params(order, items)
    assert _gross_sum(params) == order.grand_total


def test_fractional_quantity_cannot_be_exported() -> None:
    with pytest.raises(MappingError, match="quantity 1.5"):
        spec_params(unit_order(), [unit_item(1, "CHEESE", "1.5", "10")])


def test_missing_sales_channel_is_a_mapping_error() -> None:
    order = unit_order()
    with pytest.raises(MappingError, match="no sales channel id"):
        mappers.order_to_specification(order, items=[unit_item(1, "A", 1, "10")], addresses=unit_addresses(order),
                                       sales_channel_id="")


@pytest.mark.parametrize(("total", "weights", "parts"), [
    ("10.00", [1, 1, 1], ["3.33", "3.33", "3.34"]),
    ("1.00", [0, 0], ["0.50", "0.50"]),
    ("60.00", [40, 40, 5, 5, 5, 5], ["24.00", "24.00", "3.00", "3.00", "3.00", "3.00"]),
    ("0.01", [1, 1, 1], ["0.00", "0.00", "0.01"]),
])
def test_allocate_is_exact(total: str, weights: list[int], parts: list[str]) -> None:
    got = allocate(D(total), [D(w) for w in weights])
    assert got == [D(p) for p in parts]
    assert sum(got) == D(total)


def test_line_index_inverts_the_expansion() -> None:
    _, items = _bundle()
    index = mappers.line_index(items)
    assert index.resolve("201-2") == mappers.LineRef("201-2", 2, 201, 2, 200)
    assert index.by_number[3].item_id == 202
    assert index.shipping_line_number == 7
    assert index.is_shipping("SHIPPING")
    assert index.is_shipping("7")


# ----------------------------------------------------------------------------- status mapping


@pytest.mark.parametrize(("code", "reason", "state", "status"), [
    ("COMPLETE", "FULLYSHIPPED", Order.STATE_COMPLETE, "complete"),
    ("complete", "", Order.STATE_COMPLETE, "complete"),
    ("COMPLETE", "FULLYCANCELLED", Order.STATE_CANCELED, "canceled"),
    ("CANCELLED", "CUSTOMERREQ", Order.STATE_CANCELED, "canceled"),
    ("cancelled", "", Order.STATE_CANCELED, "canceled"),
    ("REJECTED", "ANALYSTDEFFRAUD", Order.STATE_CANCELED, "canceled"),
    ("LOGISTICS", "READYTOSHIP", Order.STATE_PROCESSING, "processing"),
    ("LogisticsComplete", "FULLYSHIPPED", Order.STATE_PROCESSING, "processing"),
    ("ONHOLD", "PENDINGREMORSETIME", Order.STATE_HOLDED, "holded"),
    ("on_hold", "", Order.STATE_HOLDED, "holded"),
    ("NEW_ORDER", "NEWFRONTEND", Order.STATE_NEW, "pending"),
    ("received", "IMPORTED", Order.STATE_NEW, "pending"),
])
def test_oms_status_mapping(code: str, reason: str, state: str, status: str) -> None:
    assert map_order_status(code, reason) == mappers.StateChange(state, status)


@pytest.mark.parametrize("code", ["ERROR", "INCOMPLETE", "SOMETHING_NEW", "", "???"])
def test_unknown_or_unmapped_status_keeps_the_state(code: str) -> None:
    assert map_order_status(code, "WHATEVER") is None


def test_summarize_line_statuses() -> None:
    assert mappers.summarize_statuses(["SHIPPED", "SHIPPED"]) == "SHIPPED"
    assert mappers.summarize_statuses(["SHIPPED", "NEW", "SHIPPED"]) == "2 SHIPPED, 1 NEW"
    assert mappers.summarize_statuses([]) == ""


# ----------------------------------------------------------------------------- shipment lines


def _shipment(packages: list[dict[str, Any]] | None = None, items: list[dict[str, Any]] | None = None) -> Any:
    body: dict[str, Any] = {"order_id": "000000042", "shipment_id": "S1"}
    if packages is not None:
        body["packages"] = packages
    if items is not None:
        body["items"] = items
    return messages.parse_shipment_done({"shipment": body})


ITEMS = [unit_item(101, "SKU-A", 2, "10"), unit_item(102, "SKU-B", 1, "25")]  # lines 101-1, 101-2, 102 + SHIPPING=4


@pytest.mark.parametrize(("shipment", "by_item", "unknown"), [
    # aggregated items: ids + quantity (our per-unit lines)
    (_shipment([{"items": ["1", "2"], "aggregated_items": [
        {"sku": "SKU-A", "quantity": 2, "order_lines": ["101-1", "101-2"]}]}]), {101: D(2)}, ()),
    # quantity as a string, default = number of lines
    (_shipment([{"aggregated_items": [{"sku": "SKU-A", "quantity": "1", "order_lines": ["101-2"]},
                                      {"sku": "SKU-B", "order_lines": ["102"]}]}]), {101: D(1), 102: D(1)}, ()),
    # fallback: package items as line numbers (mock sends strings), shipping line ignored
    (_shipment([{"items": ["1", "3", "4"]}]), {101: D(1), 102: D(1)}, ()),
    # fallback: package items as ids
    (_shipment([{"items": ["101-2"]}]), {101: D(1)}, ()),
    # no packages: shipment items with quantity
    (_shipment(items=[{"order_line_id": "102", "quantity": 1}, {"order_line_id": "SHIPPING"}]), {102: D(1)}, ()),
    # unknown lines are reported, never guessed
    (_shipment([{"aggregated_items": [{"sku": "X", "quantity": 1, "order_lines": ["999"]}]}]), {}, ("999",)),
])
def test_shipped_quantities(shipment: Any, by_item: dict[int, Decimal], unknown: tuple[str, ...]) -> None:
    got = mappers.shipped_quantities(shipment, mappers.line_index(ITEMS))
    assert dict(got.by_item) == by_item
    assert got.unknown == unknown


def test_parse_shipment_done_reads_the_misspelled_id_and_rejects_empty() -> None:
    parsed = messages.parse_shipment_done({"shipment": {"order_id": 12, "shimpent_id": "12-001", "items": [{}]}})
    assert parsed.shipment_id == "12-001"
    assert parsed.order_id == "12"
    with pytest.raises(messages.InvalidPayload, match="shipment.order_id"):
        messages.parse_shipment_done({"shipment": {"items": []}})
    with pytest.raises(messages.InvalidPayload, match="neither items nor packages"):
        messages.parse_shipment_done({"shipment": {"order_id": "1"}})


def test_parse_order_update_is_lenient() -> None:
    update = messages.parse_order_update({"order": {"id": "7", "status": "complete", "lines": [
        {"id": 101, "line_number": "1", "status": "shipped", "quantity_cancelled": "0"}]}, "extra": 1})
    assert update.lines[0] == messages.LineStatus(
        id="101", line_number=1, sku="", status="shipped", status_reason="", quantity=None, quantity_shipped=None,
        quantity_cancelled=D(0))
    with pytest.raises(messages.InvalidPayload, match="order must be an object"):
        messages.parse_order_update({"order": []})


def test_with_attribute_adds_or_replaces() -> None:
    order = unit_order()
    spec = mappers.order_to_specification(order, items=[unit_item(1, "A", 1, "10")], addresses=unit_addresses(order),
                                          sales_channel_id="c")
    line = spec.lines[0].with_attribute("gift_wrap", True).with_attribute("gift_wrap", "no")
    assert line.custom_attributes == (messages.CustomAttribute("gift_wrap", "no"),)
    assert replace(spec, lines=(line,)).with_attribute("x", 1).custom_attributes[-1].value == "1"
