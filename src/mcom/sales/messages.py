"""Typed params of the sales module's OMS messages (oms-protocol.md §8.1–§8.3, §8.10, §8.11).

Outbound (``order_management.create``) values are frozen dataclasses built by
:mod:`mcom.sales.mappers`; :meth:`OrderSpec.to_params` renders the JSON-RPC ``params``
(money as JSON numbers rounded to cents, §12 #12). Plugins receive and return these objects and
change them with :meth:`OrderLine.with_attribute` / :meth:`OrderSpec.with_attribute` or
:func:`dataclasses.replace`.

Inbound params are parsed leniently at the edge (:func:`parse_order_update`, …): only the fields we
read are declared, numbers may arrive as numeric strings, unknown members are ignored (the raw
params stay in the message log verbatim). A missing required field raises
:class:`~mcom.service_bus.errors.InvalidPayload` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from mcom.service_bus.errors import InvalidPayload as InvalidPayload
from mcom.wire import (
    CENT,
    CustomAttribute,
    InboundModel,
    LineNumber,
    LooseDecimal,
    LooseList,
    LooseText,
    RequiredId,
    loose_decimal,
    loose_text,
    parse,
)

# Vocabulary (oms-protocol.md §9)
PHYSICAL = "PHYSICAL"
SERVICE = "SERVICE"
SHIPPING = "SHIPPING"
GUEST = "GUEST"
REGISTERED = "REGISTERED"
B2C = "B2C"
FRONTEND = "FRONTEND"
ANONYMOUS = "anonymous"
TAX_VAT = "VAT"
TAX_NONE = "NO TAX"


def money(value: Decimal) -> float:
    """A money amount as a JSON number rounded to cents (half up)."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def rate(value: Decimal) -> float:
    """A percentage as a JSON number (up to 4 decimals, trailing zeros dropped)."""
    return float(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


# =============================================================================== outbound


def attribute_value(value: Any) -> str:
    """Custom attribute values travel as strings; structured values as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _with_attribute(attrs: tuple[CustomAttribute, ...], code: str, value: Any) -> tuple[CustomAttribute, ...]:
    new = CustomAttribute(code, attribute_value(value))
    if any(a.attribute_code == code for a in attrs):
        return tuple(new if a.attribute_code == code else a for a in attrs)
    return (*attrs, new)


@dataclass(frozen=True, slots=True)
class Tax:
    type: str  # TAX_VAT | TAX_NONE
    amount: Decimal
    rate: Decimal

    def to_params(self) -> dict[str, Any]:
        return {"type": self.type, "amount": money(self.amount), "rate": rate(self.rate)}


@dataclass(frozen=True, slots=True)
class Amount:
    """A line's amount: ``gross = net + tax`` (discount already deducted from both)."""

    net_amount: Decimal
    gross_amount: Decimal
    tax_amount: Decimal
    tax_rate: Decimal
    currency: str
    taxes: tuple[Tax, ...]

    def to_params(self) -> dict[str, Any]:
        return {
            "net_amount": money(self.net_amount),
            "gross_amount": money(self.gross_amount),
            "tax_amount": money(self.tax_amount),
            "tax_rate": rate(self.tax_rate),
            "currency": self.currency,
            "taxes": [t.to_params() for t in self.taxes],
        }


@dataclass(frozen=True, slots=True)
class Promotion:
    code: str | None
    name: str
    discount: Decimal
    percentage: Decimal

    def to_params(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "discount": money(self.discount),
                "percentage": rate(self.percentage)}


@dataclass(frozen=True, slots=True)
class PromotionsInfo:
    original_price: Decimal
    promotions: tuple[Promotion, ...] = ()

    def to_params(self) -> dict[str, Any]:
        return {"original_price": money(self.original_price), "promotions": [p.to_params() for p in self.promotions]}


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One OMS order line = one unit of a commerce order item (see :mod:`mcom.sales.mappers`)."""

    id: str
    line_number: int
    product_type: str
    sku: str
    product_name: str
    amount: Amount
    promotions_info: PromotionsInfo
    shipping_address_reference: str | None
    payment_reference: str | None
    image_url: str = ""
    product_url: str | None = None
    parent_line_id: str | None = None
    source_id: str | None = None
    custom_attributes: tuple[CustomAttribute, ...] = ()

    def with_attribute(self, code: str, value: Any) -> OrderLine:
        """A copy with the custom attribute ``code`` set to ``value`` (replaced if present)."""
        return replace(self, custom_attributes=_with_attribute(self.custom_attributes, code, value))

    def attribute(self, code: str) -> str | None:
        return next((a.value for a in self.custom_attributes if a.attribute_code == code), None)

    def to_params(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "line_number": self.line_number,
            "product_type": self.product_type,
            "sku": self.sku,
            "product_name": self.product_name,
            "parent_line_id": self.parent_line_id,
            "image_url": self.image_url,
            "product_url": self.product_url,
            "source_id": self.source_id,
            "source_location": None,
            "pickup_location": None,
            "pre_order_street_date": None,
            "status": None,
            "shipping_address_reference": self.shipping_address_reference,
            "payment_reference": self.payment_reference,
            "amount": self.amount.to_params(),
            "promotions_info": self.promotions_info.to_params(),
            "custom_attributes": [a.to_params() for a in self.custom_attributes],
        }


@dataclass(frozen=True, slots=True)
class Address:
    reference: str
    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    state: str
    zip: str
    country_code: str
    phone: str
    email: str
    address_type: str = "customer"

    def to_params(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "address_type": self.address_type, "first_name": self.first_name,
            "last_name": self.last_name, "address1": self.address1, "address2": self.address2,
            "city": self.city, "state": self.state, "zip": self.zip, "country_code": self.country_code,
            "phone": self.phone, "email": self.email,
        }


@dataclass(frozen=True, slots=True)
class GatewayInformation:
    gateway_id: str
    authorization_status: str
    transaction_id: str | None
    custom_attributes: tuple[CustomAttribute, ...] = ()

    def to_params(self) -> dict[str, Any]:
        return {
            "gateway_id": self.gateway_id,
            "account": None,
            "transaction_id": self.transaction_id,
            "authorization_status": self.authorization_status,
            "original_auth_request_id": None,
            "payment_account_unique_id": None,
            "payment_service_response": None,
            # gateway custom attributes carry ``name`` too (as the recorded payloads do)
            "custom_attributes": [{**a.to_params(), "name": a.attribute_code} for a in self.custom_attributes],
        }


@dataclass(frozen=True, slots=True)
class Transaction:
    payment_method: str
    payment_submethod: str
    amount: Decimal
    billing_address_reference: str
    gateway_information: GatewayInformation

    def to_params(self) -> dict[str, Any]:
        return {
            "payment_method": self.payment_method,
            "payment_submethod": self.payment_submethod,
            "amount": money(self.amount),
            "billing_address_reference": self.billing_address_reference,
            "gateway_information": self.gateway_information.to_params(),
        }


@dataclass(frozen=True, slots=True)
class Payment:
    reference: str
    currency: str
    transactions: tuple[Transaction, ...]

    def to_params(self) -> dict[str, Any]:
        return {"reference": self.reference, "currency": self.currency,
                "transactions": [t.to_params() for t in self.transactions]}


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    type: str  # GUEST | REGISTERED
    segment: str = B2C

    def to_params(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "segment": self.segment}


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """``params.order`` of ``magento.sales.order_management.create`` (§8.1)."""

    id: str
    store: str
    origin_date: str
    ip: str | None
    language: str
    vat_country: str | None
    customer: Customer
    addresses: tuple[Address, ...]
    payments: tuple[Payment, ...]
    lines: tuple[OrderLine, ...]
    origin: str = FRONTEND
    customer_service_agent: str | None = None
    custom_attributes: tuple[CustomAttribute, ...] = ()

    def with_attribute(self, code: str, value: Any) -> OrderSpec:
        """A copy with the order-level custom attribute ``code`` set to ``value``."""
        return replace(self, custom_attributes=_with_attribute(self.custom_attributes, code, value))

    def line(self, line_id: str) -> OrderLine | None:
        return next((ln for ln in self.lines if ln.id == line_id), None)

    def to_params(self) -> dict[str, Any]:
        """The JSON-RPC params: ``{"order": {...}}``."""
        return {"order": {
            "id": self.id,
            "store": self.store,
            "status": None,
            "status_reason": None,
            "ip": self.ip,
            "language": self.language,
            "vat_country": self.vat_country,
            "origin": self.origin,
            "origin_date": self.origin_date,
            "customer_service_agent": self.customer_service_agent,
            "customer": self.customer.to_params(),
            "addresses": [a.to_params() for a in self.addresses],
            "payments": [p.to_params() for p in self.payments],
            "lines": [ln.to_params() for ln in self.lines],
            "custom_attributes": [a.to_params() for a in self.custom_attributes],
        }}


# =============================================================================== inbound readers
#
# Parsed with pydantic models of the shared wire types (:mod:`mcom.wire`): lenient about what the
# simulators send (ids as numbers, numbers as strings, a stray object where text was expected),
# strict about the ids we need. Each message knows its entity key (``order:<increment id>``).


def text(value: Any, default: str = "") -> str:
    """A string field; numbers become their text, null/absent the default."""
    return loose_text(value, default)


def decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    """A number that may arrive as a JSON number or a numeric string (§12 #12); else ``default``."""
    out = loose_decimal(value)
    return default if out is None else out


def order_key(increment_id: str) -> str:
    """The message-log key of everything about one order (outbound create, inbound updates)."""
    return f"order:{increment_id}"


_Stripped = Annotated[LooseText, AfterValidator(str.strip)]
_Lines = Annotated[tuple[str, ...], BeforeValidator(lambda v: tuple(t for t in (text(x) for x in _listed(v)) if t))]


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class LineStatus(InboundModel):
    """A line of ``order_management.updated`` as far as we read it."""

    id: RequiredId
    line_number: LineNumber = None
    sku: LooseText = ""
    status: _Stripped = ""
    status_reason: _Stripped = ""
    quantity: LooseDecimal = None
    quantity_shipped: LooseDecimal = None
    quantity_cancelled: LooseDecimal = None


class OrderUpdate(InboundModel):
    """``params.order`` of ``magento.sales.order_management.updated`` / ``created`` (§8.2)."""

    order_id: RequiredId = Field(alias="id")
    status: _Stripped = ""
    status_reason: _Stripped = ""
    status_date: LooseText = ""
    lines: Annotated[tuple[LineStatus, ...], LooseList] = ()

    @property
    def entity_key(self) -> str:
        return order_key(self.order_id)

    @staticmethod
    def entity_key_of(params: Mapping[str, Any]) -> str:
        """The key from raw params (at ingest; never fails): ``order:<id>`` or ``order:?``."""
        return order_key(order_id_of(params))


def parse_order_update(params: Mapping[str, Any]) -> OrderUpdate:
    """Read ``order_management.updated`` (or ``created``) params. Raises InvalidPayload."""
    return parse(OrderUpdate, params, "order")


def order_id_of(params: Mapping[str, Any]) -> str:
    """The order increment id of ``{"order": {"id": …}}`` params, or ``"?"`` (entity keys never fail)."""
    order = params.get("order")
    return text(order.get("id"), "?") if isinstance(order, Mapping) else "?"


def shipment_order_id_of(params: Mapping[str, Any]) -> str:
    """The ``order_id`` of ``{"shipment": {...}}`` params, or ``"?"``."""
    shipment = params.get("shipment")
    return text(shipment.get("order_id"), "?") if isinstance(shipment, Mapping) else "?"


class AggregatedItem(InboundModel):
    sku: LooseText = ""
    quantity: LooseDecimal = None
    order_lines: _Lines = ()


class Package(InboundModel):
    id: LooseText = ""  # the package's position (1-based) when absent
    carrier: _Stripped = ""
    tracking_number: _Stripped = ""
    tracking_link: _Stripped = ""
    tracking_comment: _Stripped = ""
    items: _Lines = ()  # line numbers (shipment done) or line ids (shipping details), §12 #14
    aggregated_items: Annotated[tuple[AggregatedItem, ...], LooseList] = ()
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> Any:
        package = handler(data)
        if isinstance(data, Mapping):
            package._raw = dict(data)
        return package

    @property
    def raw(self) -> Mapping[str, Any]:
        """The package as received (echoed back with tracking in the shipping details answer)."""
        return self._raw


def _numbered(packages: tuple[Package, ...]) -> tuple[Package, ...]:
    """A package without an id is known by its position (1-based)."""
    out = []
    for i, p in enumerate(packages):
        if loose_text(p.raw.get("id"), "\0") == "\0":  # absent, null or not text
            numbered = p.model_copy(update={"id": str(i + 1)})
            numbered._raw = p._raw
            p = numbered
        out.append(p)
    return tuple(out)


_Packages = Annotated[tuple[Package, ...], LooseList, AfterValidator(_numbered)]


class ShipmentItem(InboundModel):
    order_line_id: LooseText = ""
    order_line_number: LineNumber = None
    sku: LooseText = ""
    quantity: LooseDecimal = None


_Items = Annotated[tuple[ShipmentItem, ...], LooseList]


class _OfOrder(InboundModel):
    order_id: RequiredId

    @property
    def entity_key(self) -> str:
        return order_key(self.order_id)


class ShipmentDone(_OfOrder):
    """``params.shipment`` of ``customer_shipment_done`` (§8.3); also the misspelled ``shimpent_id``."""

    shipment_id: LooseText = ""
    shimpent_id: LooseText = ""
    store_id: LooseText = ""
    source_id: LooseText = ""
    method: LooseText = ""
    shipment_date: LooseText = ""
    items: _Items = ()
    packages: _Packages = ()

    @model_validator(mode="after")
    def _complete(self) -> ShipmentDone:
        if not self.items and not self.packages:
            raise ValueError("shipment has neither items nor packages")
        return self

    @staticmethod
    def entity_key_of(params: Mapping[str, Any]) -> str:
        return order_key(shipment_order_id_of(params))


def parse_shipment_done(params: Mapping[str, Any]) -> ShipmentDone:
    """Read ``customer_shipment_done`` params. Raises InvalidPayload."""
    parsed = parse(ShipmentDone, params, "shipment")
    shipment_id = parsed.shipment_id.strip() or parsed.shimpent_id.strip()
    return parsed if shipment_id == parsed.shipment_id else parsed.model_copy(update={"shipment_id": shipment_id})


class ShippingDetailsRequest(_OfOrder):
    """``params.shipment`` of ``carrier_management.request_shipping_details`` (§8.10)."""

    source_id: LooseText = ""
    method: LooseText = ""
    packages: _Packages = ()

    @field_validator("packages")
    @classmethod
    def _some(cls, v: tuple[Package, ...]) -> tuple[Package, ...]:
        if not v:
            raise ValueError("must be a non-empty array")
        return v


def parse_shipping_details_request(params: Mapping[str, Any]) -> ShippingDetailsRequest:
    return parse(ShippingDetailsRequest, params, "shipment")


class ShipmentRequest(_OfOrder):
    """Params of ``warehouse_management.request_shipment`` (§8.11, not wrapped in a key)."""

    request_id: RequiredId
    source_id: LooseText = ""
    items: _Items = ()

    @staticmethod
    def entity_key_of(params: Mapping[str, Any]) -> str:
        return order_key(text(params.get("order_id"), "?") if isinstance(params, Mapping) else "?")


def parse_shipment_request(params: Mapping[str, Any]) -> ShipmentRequest:
    return parse(ShipmentRequest, params)
