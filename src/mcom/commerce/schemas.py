"""Typed payloads of the REST intake (pydantic): what we accept and what we answer.

Validation is strict at this edge (unknown fields are rejected, amounts are decimals bounded to
the ``DecimalField(12, 4)`` columns, quantities positive; no string or key anywhere may hold a NUL
or a lone surrogate and nesting is at most :data:`mcom.jsonguard.MAX_DEPTH` deep — each refused
with a 422 naming the field); the services trust these objects. Money and quantities travel as JSON numbers or
strings in requests and as decimal strings in responses (exact, no float rounding).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mcom import jsonguard

PRODUCT_TYPES = ("simple", "configurable", "bundle", "virtual", "giftcard")
ProductType = Literal["simple", "configurable", "bundle", "virtual", "giftcard"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError("not a valid e-mail address")
    return value


def _sku(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    reason = jsonguard.bad_string(value)
    if reason:
        raise ValueError(reason)
    return value


Email = Annotated[str, AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email", "maxLength": 254})]
Sku = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_sku)]
# The commerce columns are DecimalField(max_digits=12, decimal_places=4): at most 99,999,999.9999.
# Strings are exact (at most 4 decimals); a JSON float is approximate anyway and is rounded to the
# 4 decimals the column keeps. The OpenAPI schema states the same bounds, so generated clients agree.
_MONEY_TEXT = r"^\d{1,8}(\.\d{1,4})?$"
_QTY_TEXT = r"^(0{0,7}[1-9]\d{0,7}(\.\d{1,4})?|0{1,8}\.([1-9]\d{0,3}|0[1-9]\d{0,2}|00[1-9]\d?|000[1-9]))$"
_PERCENT_TEXT = r"^(100(\.0{1,4})?|\d{1,2}(\.\d{1,4})?)$"


def _float_to_4_places(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(str(round(value, 4)))
    return value


def _schema(pattern: str, minimum: float, maximum: float) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "number", "minimum": minimum, "maximum": maximum},
                                     {"type": "string", "pattern": pattern}]})


_ROUND = BeforeValidator(_float_to_4_places)
Money = Annotated[Decimal, _ROUND, Field(ge=0, max_digits=12, decimal_places=4), _schema(_MONEY_TEXT, 0, 99_999_999)]
Qty = Annotated[Decimal, _ROUND, Field(gt=0, max_digits=12, decimal_places=4), _schema(_QTY_TEXT, 0.0001, 99_999_999)]
Percent = Annotated[Decimal, _ROUND, Field(ge=0, le=100, max_digits=7, decimal_places=4), _schema(_PERCENT_TEXT, 0, 100)]
Weight = Money
Attributes = dict[str, Any]


def refuse_unstorable(data: Any) -> Any:
    """Raise a 422-able error (its ``ctx.path`` names the field) for NUL, surrogates, depth."""
    try:
        jsonguard.check(data)
    except jsonguard.Refused as e:
        raise PydanticCustomError("unstorable", "{reason}", {"reason": e.reason, "path": list(e.path)}) from None
    return data


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return refuse_unstorable(data)


# ------------------------------------------------------------------------------------- orders


class AddressIn(_In):
    firstname: str = Field(min_length=1, max_length=128)
    lastname: str = Field(min_length=1, max_length=128)
    street1: str = Field(min_length=1, max_length=255)
    street2: str = Field(default="", max_length=255)
    city: str = Field(min_length=1, max_length=128)
    region: str = Field(default="", max_length=128)
    postcode: str = Field(min_length=1, max_length=20)
    country_id: str = Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")
    telephone: str = Field(default="", max_length=32)
    email: Email | None = None


class OrderChildIn(_In):
    """A chosen child of a configurable or bundle line; ``qty`` is per one unit of the parent."""

    sku: Sku
    qty: Qty = Decimal("1")


class OrderLineIn(_In):
    sku: Sku
    qty: Qty
    price: Money | None = Field(default=None, description="unit price excl. tax; default: the product's price")
    name: str | None = Field(default=None, max_length=255)
    tax_percent: Percent = Decimal("0")
    discount_amount: Money = Decimal("0")
    children: list[OrderChildIn] | None = Field(
        default=None, description="configurable: the chosen child; bundle: default the product's children"
    )
    custom_attributes: Attributes = Field(default_factory=dict)


class ShippingIn(_In):
    method: str = Field(default="flatrate_flatrate", min_length=1, max_length=64)
    description: str = Field(default="Flat Rate", max_length=255)
    amount: Money = Decimal("0")
    tax_percent: Percent = Decimal("0")


class OrderIn(_In):
    """An order placed by the storefront/ERP. Totals are computed from the lines."""

    increment_id: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    store: str = Field(default="default", min_length=1, max_length=32)
    customer_email: Email
    customer_firstname: str = Field(default="", max_length=128)
    customer_lastname: str = Field(default="", max_length=128)
    customer_id: str = Field(default="", max_length=64, description="empty for guests")
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    status: str = Field(default="pending", min_length=1, max_length=64)
    payment_method: str = Field(default="checkmo", min_length=1, max_length=64)
    payment_authorized: StrictBool = True
    payment_transaction_id: str = Field(default="", max_length=128)
    billing_address: AddressIn
    shipping_address: AddressIn | None = Field(default=None, description="default: the billing address")
    shipping: ShippingIn = Field(default_factory=ShippingIn)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    remote_ip: str | None = None
    custom_attributes: Attributes = Field(default_factory=dict)


class StatusChangeIn(_In):
    status: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=2000)


# ------------------------------------------------------------------------------------- catalog


class ProductIn(_In):
    sku: Sku
    name: str = Field(min_length=1, max_length=255)
    type: ProductType = "simple"
    enabled: StrictBool = True
    price: Money = Decimal("0")
    weight: Weight | None = None
    manage_stock: StrictBool | None = Field(default=None, description="default: no for virtual and gift cards")
    url_key: str = Field(default="", max_length=255)
    image_url: str = Field(default="", max_length=255)
    custom_attributes: Attributes = Field(default_factory=dict)
    children_skus: list[Sku] = Field(default_factory=list)


class ProductPutIn(_In):
    """``PUT /api/products/{sku}``: a product without its sku (the path names it)."""

    name: str = Field(min_length=1, max_length=255)
    type: ProductType = "simple"
    enabled: StrictBool = True
    price: Money = Decimal("0")
    weight: Weight | None = None
    manage_stock: StrictBool | None = None
    url_key: str = Field(default="", max_length=255)
    image_url: str = Field(default="", max_length=255)
    custom_attributes: Attributes = Field(default_factory=dict)
    children_skus: list[Sku] = Field(default_factory=list)


MAX_BULK_PRODUCTS = 10_000


class ProductsBulkIn(_In):
    items: list[ProductIn] = Field(min_length=1, max_length=MAX_BULK_PRODUCTS)


class StockIn(_In):
    qty: Weight


# ------------------------------------------------------------------------------------- output


class StockOut(BaseModel):
    aggregate: str
    qty: Decimal
    is_in_stock: bool
    stock_status: bool | None = Field(description="the storefront index (None: not indexed yet)")
    updated_at: datetime | None


class ProductOut(BaseModel):
    sku: str
    name: str
    type: str
    enabled: bool
    price: Decimal
    weight: Decimal | None
    manage_stock: bool
    url_key: str
    image_url: str
    custom_attributes: Attributes
    children_skus: list[str]
    updated_at: datetime
    stock: list[StockOut] = Field(default_factory=list)


class UpsertOut(BaseModel):
    created: int
    updated: int
    skus: list[str] = Field(default_factory=list, description="the first 100 saved skus")


class AddressOut(BaseModel):
    address_type: str
    firstname: str
    lastname: str
    street1: str
    street2: str
    city: str
    region: str
    postcode: str
    country_id: str
    telephone: str
    email: str


class OrderItemOut(BaseModel):
    id: int
    parent_id: int | None
    sku: str
    name: str
    product_type: str
    qty_ordered: Decimal
    qty_shipped: Decimal
    qty_refunded: Decimal
    qty_canceled: Decimal
    qty_returned: Decimal
    price: Decimal
    price_incl_tax: Decimal
    tax_percent: Decimal
    tax_amount: Decimal
    discount_amount: Decimal
    row_total: Decimal
    row_total_incl_tax: Decimal
    oms_status: str
    custom_attributes: Attributes


class TrackOut(BaseModel):
    carrier: str
    tracking_number: str
    tracking_url: str


class ShipmentItemOut(BaseModel):
    order_item_id: int
    sku: str
    qty: Decimal


class ShipmentOut(BaseModel):
    oms_shipment_id: str
    source_id: str
    method: str
    shipped_at: datetime | None
    items: list[ShipmentItemOut]
    tracks: list[TrackOut]


class CreditMemoOut(BaseModel):
    credit_note_number: str
    reason: str
    subtotal: Decimal
    tax_amount: Decimal
    grand_total: Decimal
    created_at: datetime


class RmaItemOut(BaseModel):
    order_item_id: int
    sku: str
    qty: Decimal
    reason: str
    condition: str
    status: str


class RmaOut(BaseModel):
    request_id: str
    rma_number: str | None
    status: str
    reason: str
    tracking_number: str
    label_url: str
    created_at: datetime
    items: list[RmaItemOut]


class StatusHistoryOut(BaseModel):
    status: str
    comment: str
    source: str
    created_at: datetime


class OrderOut(BaseModel):
    increment_id: str
    store: str
    state: str
    status: str
    oms_status: str
    payment_method: str
    payment_authorized: bool
    customer_email: str
    customer_firstname: str
    customer_lastname: str
    currency: str
    subtotal: Decimal
    tax_amount: Decimal
    shipping_amount: Decimal
    shipping_tax_amount: Decimal
    discount_amount: Decimal
    grand_total: Decimal
    total_refunded: Decimal
    created_at: datetime
    export_state: str
    export_attempts: int
    export_error: str
    exported_at: datetime | None
    addresses: list[AddressOut]
    items: list[OrderItemOut]
    shipments: list[ShipmentOut]
    credit_memos: list[CreditMemoOut]
    rmas: list[RmaOut]
    status_history: list[StatusHistoryOut]


class ErrorOut(BaseModel):
    detail: str


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str = "value_error"


class ValidationErrorOut(BaseModel):
    detail: list[FieldErrorOut]
