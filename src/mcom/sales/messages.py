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
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from mcom.service_bus.errors import InvalidPayload

CENT = Decimal("0.01")

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
SHIPPING_LINE_ID = "SHIPPING"


def money(value: Decimal) -> float:
    """A money amount as a JSON number rounded to cents (half up)."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def rate(value: Decimal) -> float:
    """A percentage as a JSON number (up to 4 decimals, trailing zeros dropped)."""
    return float(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


# =============================================================================== outbound


@dataclass(frozen=True, slots=True)
class CustomAttribute:
    """``{attribute_code, value}`` (§8.1; the ``updated`` echo calls the code ``name``, §12 #20)."""

    attribute_code: str
    value: str

    def to_params(self) -> dict[str, Any]:
        return {"attribute_code": self.attribute_code, "value": self.value}


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


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"{where} must be an object")
    return value


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def text(value: Any, default: str = "") -> str:
    """A string field; numbers become their text, null/absent the default."""
    if value is None or isinstance(value, Mapping | list):
        return default
    return str(value).strip() if not isinstance(value, str) else value


def _required_id(container: Mapping[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise InvalidPayload(f"{where} is required (non-empty string)")
    return str(value).strip()


def decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    """A number that may arrive as a JSON number or a numeric string (§12 #12); else ``default``."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str) and value.strip():
        try:
            out = Decimal(value.strip())
        except InvalidOperation:
            return default
        return out if out.is_finite() else default
    return default


@dataclass(frozen=True, slots=True)
class LineStatus:
    """A line of ``order_management.updated`` as far as we read it."""

    id: str
    line_number: int | None
    sku: str
    status: str
    status_reason: str
    quantity: Decimal | None
    quantity_shipped: Decimal | None
    quantity_cancelled: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """``params.order`` of ``magento.sales.order_management.updated`` (§8.2)."""

    order_id: str
    status: str
    status_reason: str
    status_date: str
    lines: tuple[LineStatus, ...]


def parse_order_update(params: Mapping[str, Any]) -> OrderUpdate:
    """Read ``order_management.updated`` (or ``created``) params. Raises InvalidPayload."""
    order = _obj(params.get("order"), "order")
    order_id = _required_id(order, "id", "order.id")
    lines: list[LineStatus] = []
    for i, raw in enumerate(_list(order.get("lines"))):
        line = _obj(raw, f"order.lines[{i}]")
        number = decimal(line.get("line_number"))
        lines.append(LineStatus(
            id=_required_id(line, "id", f"order.lines[{i}].id"),
            line_number=int(number) if number is not None else None,
            sku=text(line.get("sku")),
            status=text(line.get("status")).strip(),
            status_reason=text(line.get("status_reason")).strip(),
            quantity=decimal(line.get("quantity")),
            quantity_shipped=decimal(line.get("quantity_shipped")),
            quantity_cancelled=decimal(line.get("quantity_cancelled")),
        ))
    return OrderUpdate(
        order_id=order_id,
        status=text(order.get("status")).strip(),
        status_reason=text(order.get("status_reason")).strip(),
        status_date=text(order.get("status_date")),
        lines=tuple(lines),
    )


def order_id_of(params: Mapping[str, Any]) -> str:
    """The order increment id of ``{"order": {"id": …}}`` params, or ``"?"`` (entity keys never fail)."""
    order = params.get("order")
    return text(order.get("id"), "?") if isinstance(order, Mapping) else "?"


def shipment_order_id_of(params: Mapping[str, Any]) -> str:
    """The ``order_id`` of ``{"shipment": {...}}`` params, or ``"?"``."""
    shipment = params.get("shipment")
    return text(shipment.get("order_id"), "?") if isinstance(shipment, Mapping) else "?"


@dataclass(frozen=True, slots=True)
class AggregatedItem:
    sku: str
    quantity: Decimal | None
    order_lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Package:
    id: str
    carrier: str
    tracking_number: str
    tracking_link: str
    tracking_comment: str
    items: tuple[str, ...]  # line numbers (shipment done) or line ids (shipping details), §12 #14
    aggregated_items: tuple[AggregatedItem, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ShipmentItem:
    order_line_id: str
    order_line_number: int | None
    sku: str
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class ShipmentDone:
    """``params.shipment`` of ``customer_shipment_done`` (§8.3)."""

    shipment_id: str
    order_id: str
    store_id: str
    source_id: str
    method: str
    shipment_date: str
    items: tuple[ShipmentItem, ...]
    packages: tuple[Package, ...]


def _packages(shipment: Mapping[str, Any]) -> tuple[Package, ...]:
    out: list[Package] = []
    for i, raw in enumerate(_list(shipment.get("packages"))):
        pkg = _obj(raw, f"shipment.packages[{i}]")
        aggregated = []
        for j, agg_raw in enumerate(_list(pkg.get("aggregated_items"))):
            agg = _obj(agg_raw, f"shipment.packages[{i}].aggregated_items[{j}]")
            aggregated.append(AggregatedItem(
                sku=text(agg.get("sku")),
                quantity=decimal(agg.get("quantity")),
                order_lines=tuple(text(x) for x in _list(agg.get("order_lines")) if text(x)),
            ))
        out.append(Package(
            id=text(pkg.get("id"), str(i + 1)),
            carrier=text(pkg.get("carrier")).strip(),
            tracking_number=text(pkg.get("tracking_number")).strip(),
            tracking_link=text(pkg.get("tracking_link")).strip(),
            tracking_comment=text(pkg.get("tracking_comment")).strip(),
            items=tuple(text(x) for x in _list(pkg.get("items")) if text(x)),
            aggregated_items=tuple(aggregated),
            raw=pkg,
        ))
    return tuple(out)


def _shipment_items(shipment: Mapping[str, Any]) -> tuple[ShipmentItem, ...]:
    out = []
    for i, raw in enumerate(_list(shipment.get("items"))):
        item = _obj(raw, f"shipment.items[{i}]")
        number = decimal(item.get("order_line_number"))
        out.append(ShipmentItem(
            order_line_id=text(item.get("order_line_id")),
            order_line_number=int(number) if number is not None else None,
            sku=text(item.get("sku")),
            quantity=decimal(item.get("quantity")),
        ))
    return tuple(out)


def parse_shipment_done(params: Mapping[str, Any]) -> ShipmentDone:
    """Read ``customer_shipment_done`` params (also the misspelled ``shimpent_id``). Raises InvalidPayload."""
    shipment = _obj(params.get("shipment"), "shipment")
    order_id = _required_id(shipment, "order_id", "shipment.order_id")
    parsed = ShipmentDone(
        shipment_id=text(shipment.get("shipment_id")).strip() or text(shipment.get("shimpent_id")).strip(),
        order_id=order_id,
        store_id=text(shipment.get("store_id")),
        source_id=text(shipment.get("source_id")),
        method=text(shipment.get("method")),
        shipment_date=text(shipment.get("shipment_date")),
        items=_shipment_items(shipment),
        packages=_packages(shipment),
    )
    if not parsed.items and not parsed.packages:
        raise InvalidPayload("shipment has neither items nor packages")
    return parsed


@dataclass(frozen=True, slots=True)
class ShippingDetailsRequest:
    """``params.shipment`` of ``carrier_management.request_shipping_details`` (§8.10)."""

    order_id: str
    source_id: str
    method: str
    packages: tuple[Package, ...]


def parse_shipping_details_request(params: Mapping[str, Any]) -> ShippingDetailsRequest:
    shipment = _obj(params.get("shipment"), "shipment")
    parsed = ShippingDetailsRequest(
        order_id=_required_id(shipment, "order_id", "shipment.order_id"),
        source_id=text(shipment.get("source_id")),
        method=text(shipment.get("method")),
        packages=_packages(shipment),
    )
    if not parsed.packages:
        raise InvalidPayload("shipment.packages must be a non-empty array")
    return parsed


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """Params of ``warehouse_management.request_shipment`` (§8.11, not wrapped in a key)."""

    request_id: str
    order_id: str
    source_id: str
    items: tuple[ShipmentItem, ...]


def parse_shipment_request(params: Mapping[str, Any]) -> ShipmentRequest:
    return ShipmentRequest(
        request_id=_required_id(params, "request_id", "request_id"),
        order_id=_required_id(params, "order_id", "order_id"),
        source_id=text(params.get("source_id")),
        items=_shipment_items(params),
    )
