"""Pure mapping: authorize params, status codes, refund lines → credit memo amounts, payload parsing."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from mcom.postsales import mappers
from mcom.postsales.messages import RefundLine, parse_refund_update, parse_return_update
from mcom.service_bus.errors import InvalidPayload


def test_authorize_message_renders_the_documented_params_with_our_request_id() -> None:
    message = mappers.authorize_message(
        order_id="000000042", sales_channel_id="web", source_id="WH1", user="api:shop", request_id="req-1",
        lines=[
            mappers.ReturnedLine("7-1", 1, "SKU-A", D("1"), "damaged", "box crushed", "DAMAGED", "dented"),
            mappers.ReturnedLine("8", 3, "SKU-B", D("1"), "", "", "", ""),
        ],
        extra_attributes=[("channel", "pos"), ("mcom_request_id", "ignored")],
    )
    assert message.to_params() == {"return": {
        "order_id": "000000042",
        "sales_channel_id": "web",
        "source_id": "WH1",
        "user": "api:shop",
        "custom_attributes": [
            {"attribute_code": "mcom_request_id", "name": "mcom_request_id", "value": "req-1"},
            {"attribute_code": "channel", "name": "channel", "value": "pos"},
        ],
        "return_tracking_number": "",
        "return_tracking_carrier": "",
        "return_tracking_label_url": "",
        "lines": [
            {"id": "7-1", "line_number": 1, "sku": "SKU-A", "quantity": 1, "reason": "damaged",
             "reason_description": "box crushed", "condition": "DAMAGED", "condition_description": "dented",
             "custom_attributes": []},
            {"id": "8", "line_number": 3, "sku": "SKU-B", "quantity": 1, "reason": "", "reason_description": "",
             "condition": "", "condition_description": "", "custom_attributes": []},
        ],
    }}


@pytest.mark.parametrize(("code", "expected"), [
    ("approved", "APPROVED"),
    (" Requested ", "REQUESTED"),
    ("REJECTED", "REJECTED"),
    ("InTransitBack", "InTransitBack"),  # unknown: kept verbatim
])
def test_return_status_codes_are_case_insensitive_and_unknown_codes_kept(code: str, expected: str) -> None:
    assert mappers.normalize_status(code, mappers.RETURN_STATUSES) == expected


@pytest.mark.parametrize(("code", "expected"), [("released", "RELEASED"), ("PendingRelease", "PENDINGRELEASE"),
                                                ("Something", "Something")])
def test_refund_status_codes(code: str, expected: str) -> None:
    assert mappers.normalize_status(code, mappers.REFUND_STATUSES) == expected


def _line(*details: dict[str, Any]) -> RefundLine:
    return RefundLine.model_validate({"order_item_id": "7", "payments": [{"details": d} for d in details]})


@pytest.mark.parametrize(("details", "net", "tax", "gross", "pct"), [
    # mom-mock shape, numbers as strings
    ([{"cost_gross": "12.10", "cost_net": "10.00", "cost_vat": "2.10", "vat_rate": "21"}], "10.00", "2.10", "12.10", "21"),
    # rate as a fraction
    ([{"cost_gross": 12.1, "cost_net": 10, "cost_vat": 2.1, "vat_rate": 0.21}], "10", "2.1", "12.1", "21.00"),
    # net missing: gross − vat; rate missing: derived
    ([{"cost_gross": "12.10", "cost_vat": "2.10"}], "10.00", "2.10", "12.10", "21.0000"),
    # several payments add up
    ([{"cost_gross": 6.05, "cost_net": 5, "cost_vat": 1.05, "vat_rate": 21},
      {"cost_gross": 6.05, "cost_net": 5, "cost_vat": 1.05, "vat_rate": 21}], "10", "2.10", "12.10", "21"),
    # no payments: nothing refunded
    ([], "0", "0", "0", "0"),
])
def test_refund_line_amounts(details: list[dict[str, Any]], net: str, tax: str, gross: str, pct: str) -> None:
    amounts = mappers.refund_line_amounts(_line(*details))
    assert (amounts.net, amounts.tax, amounts.gross, amounts.tax_percent) == (D(net), D(tax), D(gross), D(pct))


def test_credit_memo_totals_put_shipping_into_tax_and_grand_total_only() -> None:
    item = mappers.LineAmounts(D("10"), D("2.10"), D("12.10"), D("21"))
    shipping = mappers.LineAmounts(D("5"), D("1.05"), D("6.05"), D("21"))
    totals = mappers.credit_memo_totals([item, item], [shipping])
    assert totals == mappers.CreditMemoTotals(subtotal=D("20"), tax_amount=D("5.25"), grand_total=D("30.25"))


@pytest.mark.parametrize(("sent", "refundable", "expected"), [
    (None, D("2"), D("1")),      # one wire line = one unit
    (D("2"), D("3"), D("2")),    # a quantity the OMS sends wins
    (D("5"), D("2"), D("2")),    # never more than refundable
    (None, D("0"), D("0")),      # nothing left
])
def test_refund_qty(sent: D | None, refundable: D, expected: D) -> None:
    assert mappers.refund_qty(sent=sent, line_qty=D("1"), refundable=refundable) == expected


def test_return_update_is_parsed_leniently() -> None:
    update = parse_return_update({"return": {
        "rma": "RMA-1", "order_id": 42, "status": "approved",
        "lines": [{"id": 7, "line_number": "1", "status": {"code": "APPROVED"}}],
        "custom_attributes": [{"name": "mcom_request_id", "value": "req-1"}],
        "unknown_member": {"kept": True},
    }})
    assert update.order_id == "42"
    assert update.status is not None
    assert update.status.value == "approved"
    assert update.lines[0].id == "7"
    assert update.lines[0].status is not None
    assert update.request_id == "req-1"


@pytest.mark.parametrize(("params", "message"), [
    ({}, "params.return must be an object"),
    ({"return": []}, "params.return must be an object"),
    ({"return": {"rma": "X"}}, "return.order_id: Field required"),
    ({"return": {"order_id": "  "}}, "return.order_id"),
    ({"return": {"order_id": "1", "lines": "nope"}}, "return.lines"),
])
def test_malformed_return_update_raises_invalid_payload(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message.replace(".", r"\.")):
        parse_return_update(params)


@pytest.mark.parametrize(("params", "message"), [
    ({"refund": {"order_id": "1"}}, "refund.status"),
    ({"refund": {"order_id": "1", "status": {"code": ""}}}, "refund.status"),
    ({"refund": {"order_id": "1", "status": "RELEASED", "lines": [{"payments": [{"details": {"cost_gross": "abc"}}]}]}},
     "refund.lines.0.payments.0.details.cost_gross"),
    ({"refund": "x"}, "params.refund must be an object"),
])
def test_malformed_refund_update_raises_invalid_payload(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message.replace(".", r"\.")):
        parse_refund_update(params)
