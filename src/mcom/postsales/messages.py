"""Typed params of the post-sales OMS messages (oms-protocol.md §8.7–§8.9).

Outbound (``return_management.authorize``) params are frozen dataclasses rendered with
``to_params()``. Inbound params (``return_management.updated``, ``refund_management.updated``) are
validated at the edge with :func:`parse_return_update` / :func:`parse_refund_update`: lenient about
what the simulators send (numbers as strings, ids as numbers, a status as a bare string, unknown
members kept), strict about the few fields we read. A payload that does not fit raises
:class:`~mcom.service_bus.errors.InvalidPayload` with a one-line message naming the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from mcom.wire import Amount, InboundModel, RequiredText, Text, parse
from mcom.wire import CustomAttribute as CustomAttribute

#: custom attribute carrying our local request id, so the OMS answer can be matched to our RMA
REQUEST_ID_ATTRIBUTE = "mcom_request_id"


# --------------------------------------------------------------------------- outbound (§8.7)


@dataclass(frozen=True)
class AuthorizeLine:
    """One returned order line. ``quantity`` is our extension (the OMS models one unit per line)."""

    id: str
    line_number: int
    sku: str
    quantity: Decimal
    reason: str = ""
    reason_description: str = ""
    condition: str = ""
    condition_description: str = ""
    custom_attributes: tuple[CustomAttribute, ...] = ()

    def to_params(self) -> dict[str, Any]:
        qty = self.quantity
        return {
            "id": self.id,
            "line_number": self.line_number,
            "sku": self.sku,
            "quantity": int(qty) if qty == qty.to_integral_value() else float(qty),
            "reason": self.reason,
            "reason_description": self.reason_description,
            "condition": self.condition,
            "condition_description": self.condition_description,
            "custom_attributes": [a.to_params(both_spellings=True) for a in self.custom_attributes],
        }


@dataclass(frozen=True)
class ReturnAuthorize:
    """``params.return`` of ``magento.postsales.return_management.authorize``."""

    order_id: str
    sales_channel_id: str
    source_id: str
    user: str
    lines: tuple[AuthorizeLine, ...]
    custom_attributes: tuple[CustomAttribute, ...] = ()
    return_tracking_number: str = ""
    return_tracking_carrier: str = ""
    return_tracking_label_url: str = ""

    def to_params(self) -> dict[str, Any]:
        return {
            "return": {
                "order_id": self.order_id,
                "sales_channel_id": self.sales_channel_id,
                "source_id": self.source_id,
                "user": self.user,
                "custom_attributes": [a.to_params(both_spellings=True) for a in self.custom_attributes],
                "return_tracking_number": self.return_tracking_number,
                "return_tracking_carrier": self.return_tracking_carrier,
                "return_tracking_label_url": self.return_tracking_label_url,
                "lines": [line.to_params() for line in self.lines],
            }
        }


# --------------------------------------------------------------------------- inbound helpers


def _status(value: Any) -> Any:
    """A status is an object ``{code, name, …}`` or, from lenient peers, a bare code string."""
    if isinstance(value, str | int):
        return {"code": str(value), "name": str(value)}
    return value


#: the order's increment id: text, stripped, never empty
OrderId = RequiredText
_In = InboundModel  # unknown members kept (peers add fields)


class StatusIn(_In):
    code: Text = ""
    name: Text = ""
    date: Text = ""
    reason_code: Text = ""
    reason_name: Text = ""

    @property
    def value(self) -> str:
        """The status code (``name`` when the code is empty)."""
        return (self.code or self.name).strip()


StatusField = Annotated[StatusIn | None, BeforeValidator(_status)]


class AttributeIn(_In):
    attribute_code: Text = ""
    name: Text = ""
    value: Any = None

    @property
    def key(self) -> str:
        return self.attribute_code or self.name


def _attributes_list(value: Any) -> Any:
    return [] if value is None else value


Attributes = Annotated[list[AttributeIn], BeforeValidator(_attributes_list)]


def attribute(attributes: list[AttributeIn], key: str) -> str | None:
    """The value of custom attribute ``key`` (either key spelling), as text, or None."""
    for item in attributes:
        if item.key == key and item.value is not None:
            return str(item.value)
    return None


# --------------------------------------------------------------------------- return updated (§8.8)


class UpdatedReturnLine(_In):
    id: Text = ""
    line_number: Text = ""
    sku: Text = ""
    reason: Text = ""
    reason_description: Text = ""
    status: StatusField = None
    quantity: Amount = None
    custom_attributes: Attributes = Field(default_factory=list)


class ReturnUpdate(_In):
    """``params.return`` of ``return_management.updated``; ``order_id`` is required."""

    rma: Text = ""
    order_id: OrderId
    sales_channel_id: Text = ""
    source_id: Text = ""
    return_tracking_carrier: Text = ""
    return_tracking_number: Text = ""
    return_tracking_label_url: Text = ""
    return_tracking_url: Text = ""
    status: StatusField = None
    lines: list[UpdatedReturnLine] = Field(default_factory=list)
    custom_attributes: Attributes = Field(default_factory=list)

    @property
    def entity_key(self) -> str:
        """``order:<order_id>``: processed in order with the order's other messages."""
        return f"order:{self.order_id}"

    @property
    def request_id(self) -> str | None:
        return attribute(self.custom_attributes, REQUEST_ID_ATTRIBUTE)


# --------------------------------------------------------------------------- refund updated (§8.9)


class PaymentDetailsIn(_In):
    cost_gross: Amount = None
    cost_net: Amount = None
    cost_vat: Amount = None
    vat_rate: Amount = None


class RefundPaymentIn(_In):
    details: PaymentDetailsIn = Field(default_factory=PaymentDetailsIn)
    status: StatusField = None


class RefundLine(_In):
    order_item_id: Text = ""
    order_line: Text = ""
    sku: Text = ""
    reason: Text = ""
    reason_description: Text = ""
    quantity: Amount = None
    payments: list[RefundPaymentIn] = Field(default_factory=list)


class RefundUpdate(_In):
    """``params.refund`` of ``refund_management.updated``; ``order_id`` and ``status`` are required."""

    rma: Text = ""
    order_id: OrderId
    sales_channel_id: Text = ""
    store_id: Text = ""
    credit_note_number: Text = ""
    credit_note_date: Text = ""
    refund_reason: Text = ""
    refund_type: Text = ""
    user: Text = ""
    status: StatusField
    lines: list[RefundLine] = Field(default_factory=list)
    custom_attributes: Attributes = Field(default_factory=list)

    @property
    def entity_key(self) -> str:
        """``order:<order_id>``: processed in order with the order's other messages."""
        return f"order:{self.order_id}"

    @field_validator("status")
    @classmethod
    def _status_code(cls, v: StatusIn | None) -> StatusIn | None:
        if v is None or not v.value:
            raise ValueError("a status code is required")
        return v


# --------------------------------------------------------------------------- parsing


def parse_return_update(params: Mapping[str, Any]) -> ReturnUpdate:
    """Validate ``params`` of ``return_management.updated``; raises ``InvalidPayload``."""
    return parse(ReturnUpdate, params, "return")


def parse_refund_update(params: Mapping[str, Any]) -> RefundUpdate:
    """Validate ``params`` of ``refund_management.updated``; raises ``InvalidPayload``."""
    return parse(RefundUpdate, params, "refund")
