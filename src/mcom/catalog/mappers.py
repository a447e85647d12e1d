"""Pure mapping from commerce products and shipping methods to OMS product specs (§8.6).

No database access, no HTTP: the caller passes everything in (the product, the configured
attribute codes, the ``(channel, locale)`` pairs of the stores). Table-driven tests live in
``tests/catalog/test_mappers.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from mcom.catalog.messages import CustomAttribute, ProductName, ProductSpec

#: product types whose ``children_skus`` are exported
PARENT_TYPES = frozenset({"configurable", "bundle"})
#: attribute codes that may be read from product fields when absent from ``custom_attributes``
FIELD_ATTRIBUTES = frozenset({"price", "weight", "url_key", "image_url", "name", "manage_stock"})
SHIPPING_TYPE = "shipping"
FLAT_RATE_CARRIER = "flatrate"
FLAT_RATE_SKU = "STANDARD"
DEFAULT_CHANNEL = "default"
DEFAULT_LOCALE = "en_US"


class ProductLike(Protocol):
    """What the mapper reads from a product (a ``commerce.Product`` satisfies it)."""

    sku: str
    name: str
    type: str
    enabled: bool
    custom_attributes: Any
    children_skus: Any


@dataclass(frozen=True)
class Channel:
    """A sales channel the names are published for (a store: its channel id and locale)."""

    channel: str
    locale: str


DEFAULT_CHANNELS: tuple[Channel, ...] = (Channel(DEFAULT_CHANNEL, DEFAULT_LOCALE),)


def json_value(value: Any) -> Any:
    """A JSON-friendly value: decimals become numbers (int when whole), the rest unchanged."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def channels_for(stores: Iterable[tuple[str, str, str]]) -> tuple[Channel, ...]:
    """``(store code, sales channel id, locale)`` triples → distinct channels, in order.

    A store without a sales channel id publishes under its store code. No stores → one
    ``default``/``en_US`` channel, so a name is always sent (the mock reads ``name[0].value``).
    """
    seen: dict[tuple[str, str], Channel] = {}
    for code, channel_id, locale in stores:
        ch = Channel(channel_id or code, locale or DEFAULT_LOCALE)
        seen.setdefault((ch.channel, ch.locale), ch)
    return tuple(seen.values()) or DEFAULT_CHANNELS


def attribute_value(product: ProductLike, code: str) -> tuple[bool, Any]:
    """``(found, value)`` of ``code``: the product's ``custom_attributes`` first, then a product field."""
    attrs = product.custom_attributes if isinstance(product.custom_attributes, Mapping) else {}
    if code in attrs:
        return True, json_value(attrs[code])
    if code in FIELD_ATTRIBUTES and hasattr(product, code):
        value = getattr(product, code)
        if value is None or value == "":
            return False, None
        return True, json_value(value)
    return False, None


def custom_attributes(product: ProductLike, codes: Sequence[str]) -> tuple[CustomAttribute, ...]:
    """The configured ``codes`` the product has, in configured order; absent codes are left out."""
    out: list[CustomAttribute] = []
    for code in dict.fromkeys(codes):
        found, value = attribute_value(product, code)
        if found:
            out.append(CustomAttribute(code, value))
    return tuple(out)


def product_spec(
    product: ProductLike,
    *,
    attribute_codes: Sequence[str] = (),
    channels: Sequence[Channel] = DEFAULT_CHANNELS,
) -> ProductSpec:
    """Map a commerce product to the OMS product spec.

    ``type`` is sent verbatim (``simple``, ``configurable``, ``bundle``, ``virtual``, …);
    ``children_skus`` only for configurable and bundle products; one name per channel.
    """
    children: tuple[str, ...] = ()
    if product.type in PARENT_TYPES and isinstance(product.children_skus, list | tuple):
        children = tuple(str(s) for s in product.children_skus)
    return ProductSpec(
        sku=product.sku,
        type=product.type,
        names=tuple(ProductName(product.name, c.channel, c.locale) for c in channels or DEFAULT_CHANNELS),
        enabled=bool(product.enabled),
        custom_attributes=custom_attributes(product, attribute_codes),
        children_skus=children,
    )


def shipping_sku(carrier: str, method: str) -> str:
    """The SKU of a shipping method: ``carrier-method``; flat rate is always ``STANDARD`` (§8.6)."""
    carrier, method = carrier.strip(), method.strip()
    if carrier.lower() == FLAT_RATE_CARRIER:
        return FLAT_RATE_SKU
    return f"{carrier}-{method}" if method else carrier


def split_shipping_code(code: str) -> tuple[str, str]:
    """A commerce shipping method code ``carrier_method`` (``flatrate_flatrate``) → ``(carrier, method)``."""
    carrier, _, method = code.strip().partition("_")
    return carrier, method


def shipping_spec(
    *, carrier: str, method: str, title: str, enabled: bool = True, channels: Sequence[Channel] = DEFAULT_CHANNELS
) -> ProductSpec:
    """A shipping method as an OMS product of type ``shipping``."""
    sku = shipping_sku(carrier, method)
    return ProductSpec(
        sku=sku,
        type=SHIPPING_TYPE,
        names=tuple(ProductName(title or sku, c.channel, c.locale) for c in channels or DEFAULT_CHANNELS),
        enabled=enabled,
    )
