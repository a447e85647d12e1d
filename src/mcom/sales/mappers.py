"""Pure mapping between commerce orders and OMS sales messages (no DB writes, no HTTP).

Order → ``magento.sales.order_management.create`` (oms-protocol.md §8.1)
========================================================================

**One OMS line per unit.** §8.1 gives an OMS order line no quantity, and shipments account for
lines through ``aggregated_items[] {quantity, order_lines[] (line ids)}`` (§8.3): several line ids
add up to one quantity, which only makes sense when a line is one unit. So an item ordered 3 times
becomes 3 lines. Line ids: an item of quantity 1 keeps its commerce item id (``"8"``, exactly as in
the recorded create payloads); an item of quantity *n* > 1 becomes ``"<item id>-1"`` …
``"<item id>-n"``. ``line_number`` runs 1..N over the order in item order; the shipping line is last.
Fractional quantities cannot be expanded and raise :class:`MappingError` (the export fails, with
that reason, until the order is corrected). Amounts of an item are split over its units to the cent
(the remainder goes to the last unit), so the lines always add up to the item's row amounts.

**Product types.** ``PHYSICAL`` for simple/configurable/bundle children; ``SERVICE`` for ``virtual``
and ``giftcard`` items (the protocol has no virtual or gift-card code, §9; gift cards are treated as
e-gift cards: nothing to pick or ship); ``SHIPPING`` for the shipping line.

**Composite items.** A configurable item is sent as its chosen child's SKU with the parent's
name, amounts and id (the parent carries the price). A bundle is not a line of its own (nothing to
pick or ship): each child unit is a line with ``parent_line_id`` = the bundle's item id and the
line attribute ``bundle_sku``. When the children carry no amounts (the bundle carries the price),
the bundle's amounts are allocated over the child units by their catalog price (equal split when
unknown).

**Amounts.** ``net = row_total − discount``, ``tax = tax_amount``, ``gross = net + tax``;
``tax_rate`` = the item's tax percent; ``taxes[]`` = one ``VAT`` entry, or ``NO TAX`` with 0 when
the line carries no tax. ``promotions_info.original_price`` is the unit price incl. tax; a
discounted line lists one promotion (code: order attribute ``coupon_code``).

**Shipping line.** ``id "SHIPPING"``, ``product_type SHIPPING``, sku = the shipping method SKU (flat
rate → ``STANDARD``, else ``<carrier>-<method>`` as the catalog exports shipping methods, §8.6);
sent when the order has a physical line or a shipping charge.

**Payment.** One payment with one transaction of the grand total, ``gateway_id OFFLINE``,
``authorization_status AUTHORIZED`` (only payment-authorized orders are exported), method and
submethod ``ZEROPAY`` (payment gateways stay on the commerce side), the commerce payment method in
the gateway custom attribute ``mdc_gateway_processor``, the transaction id when known.

Plugins (:mod:`mcom.sales.plugins`) run on each goods line and then on the whole spec; they may not
change a line's ``id`` or ``line_number`` (shipments are matched on them).

OMS → order
===========

:func:`map_order_status` maps OMS order status codes to a commerce state/status (case- and
separator-insensitive, §12 #13); :func:`shipped_quantities` resolves shipment lines to items
(§12 #14/#15); :func:`line_index` is the inverse of the line expansion.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mcom.commerce.models import Order, OrderAddress, OrderItem, Product
from mcom.orderlines import LineIndex as LineIndex
from mcom.orderlines import LineRef as LineRef
from mcom.orderlines import MappingError as MappingError
from mcom.orderlines import PlannedLine as PlannedLine
from mcom.orderlines import UnitAmounts as UnitAmounts
from mcom.orderlines import allocate as allocate
from mcom.orderlines import line_index as line_index
from mcom.orderlines import percent, plan_lines
from mcom.sales.messages import (
    ANONYMOUS,
    GUEST,
    PHYSICAL,
    REGISTERED,
    SERVICE,
    SHIPPING,
    TAX_NONE,
    TAX_VAT,
    Address,
    Amount,
    Customer,
    GatewayInformation,
    OrderLine,
    OrderSpec,
    Payment,
    Promotion,
    PromotionsInfo,
    ShipmentDone,
    Tax,
    Transaction,
    attribute_value,
)
from mcom.sales.plugins import NO_PLUGINS, PluginError, PluginSet
from mcom.wire import SHIPPING_LINE_ID, CustomAttribute

ZERO = Decimal("0")
HUNDRED = Decimal("100")
SERVICE_TYPES = frozenset({Product.TYPE_VIRTUAL, Product.TYPE_GIFTCARD})
FLAT_RATE_CARRIER = "flatrate"
FLAT_RATE_SKU = "STANDARD"
GATEWAY_PROCESSOR_ATTRIBUTE = "mdc_gateway_processor"
OFFLINE_GATEWAY = "OFFLINE"
ZEROPAY = "ZEROPAY"
AUTHORIZED = "AUTHORIZED"


def shipping_method_sku(code: str) -> str:
    """``flatrate_flatrate`` → ``STANDARD``; ``ups_NextDayAir`` → ``ups-NextDayAir`` (as catalog exports it)."""
    carrier, _, method = code.strip().partition("_")
    if not carrier or carrier.lower() == FLAT_RATE_CARRIER:
        return FLAT_RATE_SKU
    return f"{carrier}-{method}" if method else carrier


def _attributes(values: Mapping[str, Any] | None) -> tuple[CustomAttribute, ...]:
    if not isinstance(values, Mapping):
        return ()
    return tuple(CustomAttribute(str(k), attribute_value(v)) for k, v in sorted(values.items()))


def _taxes(tax: Decimal, rate: Decimal) -> tuple[Tax, ...]:
    if tax == 0 and rate == 0:
        return (Tax(TAX_NONE, ZERO, ZERO),)
    return (Tax(TAX_VAT, tax, rate),)


def _amount(net: Decimal, tax: Decimal, rate: Decimal, currency: str) -> Amount:
    return Amount(net, net + tax, tax, rate, currency, _taxes(tax, rate))


def _address(a: OrderAddress, reference: str, fallback_email: str) -> Address:
    return Address(
        reference=reference, first_name=a.firstname, last_name=a.lastname, address1=a.street1,
        address2=a.street2 or "", city=a.city, state=a.region or "", zip=a.postcode, country_code=a.country_id,
        phone=a.telephone or "", email=a.email or fallback_email,
    )


def _reference(a: OrderAddress) -> str:
    return str(a.pk) if a.pk is not None else a.address_type


def origin_date(value: datetime) -> str:
    """ISO 8601 with offset, seconds precision; naive times are UTC (§12 #17)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.replace(microsecond=0).isoformat()


def _product_url(item: OrderItem, base_url: str) -> str | None:
    product = item.product if item.product_id is not None else None
    if product is None or not product.url_key or not base_url:
        return None
    return f"{base_url.rstrip('/')}/{product.url_key}.html"


def _image_url(item: OrderItem) -> str:
    product = item.product if item.product_id is not None else None
    return product.image_url if product is not None and product.image_url else ""


def _promotions(order: Order, planned: PlannedLine) -> tuple[Promotion, ...]:
    if planned.amounts.discount <= 0:
        return ()
    attrs = order.custom_attributes if isinstance(order.custom_attributes, Mapping) else {}
    code = attrs.get("coupon_code")
    name = attrs.get("discount_description") or (f"Coupon {code}" if code else "Discount")
    percentage = percent(Decimal(planned.priced.discount_amount), Decimal(planned.priced.row_total))
    return (Promotion(str(code) if code else None, str(name), planned.amounts.discount, percentage),)


def order_to_specification(
    order: Order,
    *,
    items: Sequence[OrderItem],
    addresses: Iterable[OrderAddress],
    sales_channel_id: str,
    plugins: PluginSet = NO_PLUGINS,
) -> OrderSpec:
    """The ``order_management.create`` spec of ``order`` (pure: reads the given objects only).

    ``items`` and ``addresses`` are the order's rows (with ``product`` loaded); ``order.store`` must be
    loaded. Raises :class:`MappingError` (cannot be expressed) or :class:`PluginError` (a plugin failed,
    named). Deterministic: the same inputs give the same spec.
    """
    if not sales_channel_id:
        raise MappingError(f"store {order.store.code} has no sales channel id (mcom/general/sales_channel_id)")
    store = order.store
    currency = order.currency or store.currency
    by_type = {a.address_type: a for a in addresses}
    billing = by_type.get(OrderAddress.BILLING) or by_type.get(OrderAddress.SHIPPING)
    shipping = by_type.get(OrderAddress.SHIPPING) or billing
    if billing is None or shipping is None:
        raise MappingError(f"order {order.increment_id} has no address")
    billing_ref, shipping_ref = _reference(billing), _reference(shipping)
    out_addresses = [_address(billing, billing_ref, order.customer_email)]
    if shipping is not billing:
        out_addresses.append(_address(shipping, shipping_ref, order.customer_email))
    payment_ref = str(order.pk) if order.pk is not None else order.increment_id

    plugins.check()
    lines: list[OrderLine] = []
    for planned in plan_lines(items):
        item, priced, units = planned.item, planned.priced, planned.amounts
        product_type = SERVICE if (item.product_type in SERVICE_TYPES) else PHYSICAL
        attrs = _attributes({**(priced.custom_attributes or {}), **(item.custom_attributes or {})}
                            if priced is not item else item.custom_attributes)
        if planned.parent is not None:
            attrs = (*attrs, CustomAttribute("bundle_sku", planned.parent.sku))
        line = OrderLine(
            id=planned.ref.line_id,
            line_number=planned.ref.line_number,
            product_type=product_type,
            sku=planned.sku,
            product_name=item.name,
            amount=_amount(units.net, units.tax, Decimal(priced.tax_percent), currency),
            promotions_info=PromotionsInfo(units.original_price, _promotions(order, planned)),
            shipping_address_reference=shipping_ref,
            payment_reference=payment_ref,
            image_url=_image_url(item),
            product_url=_product_url(item, store.base_url),
            parent_line_id=str(planned.parent.pk) if planned.parent is not None else None,
            custom_attributes=attrs,
        )
        mapped = plugins.after_line(item, line)
        if (mapped.id, mapped.line_number) != (line.id, line.line_number):
            name = plugins.line_hooks[-1].name if plugins.line_hooks else "?"
            raise PluginError(name, "a line plugin must not change the line's id or line_number")
        lines.append(mapped)

    if any(ln.product_type == PHYSICAL for ln in lines) or order.shipping_amount:
        net, tax = Decimal(order.shipping_amount), Decimal(order.shipping_tax_amount)
        lines.append(OrderLine(
            id=SHIPPING_LINE_ID,
            line_number=len(lines) + 1,
            product_type=SHIPPING,
            sku=shipping_method_sku(order.shipping_method),
            product_name=order.shipping_description or "Shipping",
            amount=_amount(net, tax, percent(tax, net), currency),
            promotions_info=PromotionsInfo(net + tax),
            shipping_address_reference=shipping_ref,
            payment_reference=payment_ref,
            image_url="",
        ))
    if not lines:
        raise MappingError(f"order {order.increment_id} has no items")

    gateway = GatewayInformation(
        gateway_id=OFFLINE_GATEWAY,
        authorization_status=AUTHORIZED,
        transaction_id=order.payment_transaction_id or None,
        custom_attributes=(CustomAttribute(GATEWAY_PROCESSOR_ATTRIBUTE, order.payment_method),),
    )
    payment = Payment(payment_ref, currency, (
        Transaction(ZEROPAY, ZEROPAY, Decimal(order.grand_total), billing_ref, gateway),
    ))
    spec = OrderSpec(
        id=order.increment_id,
        store=sales_channel_id,
        origin_date=origin_date(order.created_at),
        ip=order.remote_ip or None,
        language=store.locale,
        vat_country=shipping.country_id or store.country,
        customer=Customer(order.customer_id, REGISTERED) if order.customer_id else Customer(ANONYMOUS, GUEST),
        addresses=tuple(out_addresses),
        payments=(payment,),
        lines=tuple(lines),
        custom_attributes=_attributes(order.custom_attributes),
    )
    mapped_spec = plugins.after_order(order, spec)
    if mapped_spec.id != spec.id:
        raise PluginError(plugins.order_hooks[-1].name, "an order plugin must not change the order id")
    return mapped_spec


# ----------------------------------------------------------------------------------- OMS → order


@dataclass(frozen=True, slots=True)
class StateChange:
    state: str
    status: str


STATE_STATUS: dict[str, str] = {
    Order.STATE_NEW: "pending",
    Order.STATE_PROCESSING: "processing",
    Order.STATE_HOLDED: "holded",
    Order.STATE_COMPLETE: "complete",
    Order.STATE_CANCELED: "canceled",
    Order.STATE_CLOSED: "closed",
}

OMS_STATUS_STATE: dict[str, str] = {
    "NEW": Order.STATE_NEW,
    "NEWORDER": Order.STATE_NEW,
    "RECEIVED": Order.STATE_NEW,
    "APPROVED": Order.STATE_PROCESSING,
    "AUTHORIZED": Order.STATE_PROCESSING,
    "LOGISTICS": Order.STATE_PROCESSING,
    "LOGISTICSCOMPLETE": Order.STATE_PROCESSING,
    "ONHOLD": Order.STATE_HOLDED,
    "COMPLETE": Order.STATE_COMPLETE,
    "CANCELLED": Order.STATE_CANCELED,
    "CANCELED": Order.STATE_CANCELED,
    "REJECTED": Order.STATE_CANCELED,
    "ABORTED": Order.STATE_CANCELED,
    # ERROR and INCOMPLETE are kept verbatim in oms_status and leave the state as it is.
}
FULLY_CANCELLED = "FULLYCANCELLED"


def normalize_code(code: str) -> str:
    """``new_order`` / ``NEW-ORDER`` / ``NewOrder`` → ``NEWORDER`` (§12 #13)."""
    return re.sub(r"[^A-Z0-9]", "", code.upper())


def map_order_status(code: str, reason: str = "") -> StateChange | None:
    """The commerce state/status for an OMS order status, or None (unknown code: keep the state).

    ``COMPLETE``/``LOGISTICSCOMPLETE`` with reason ``FULLYCANCELLED`` mean canceled. Never raises.
    """
    key = normalize_code(code)
    state = OMS_STATUS_STATE.get(key)
    if state is None:
        return None
    if key in ("COMPLETE", "LOGISTICSCOMPLETE") and normalize_code(reason) == FULLY_CANCELLED:
        state = Order.STATE_CANCELED
    return StateChange(state, STATE_STATUS[state])


def summarize_statuses(codes: Sequence[str], limit: int = 64) -> str:
    """One field for the statuses of an item's unit lines: ``SHIPPED`` or ``2 SHIPPED, 1 NEW``."""
    counts: dict[str, int] = {}
    for c in codes:
        if c:
            counts[c] = counts.get(c, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), "")
    return ", ".join(f"{n} {c}" for c, n in counts.items())[:limit]


@dataclass(frozen=True)
class ShippedQuantities:
    """Item id → quantity shipped by one shipment; ``unknown`` lists line refs matching no item."""

    by_item: Mapping[int, Decimal]
    unknown: tuple[str, ...]


def shipped_quantities(shipment: ShipmentDone, index: LineIndex) -> ShippedQuantities:
    """Resolve a shipment's lines to item quantities (§12 #14/#15).

    Per package: ``aggregated_items[]`` (line ids + ``quantity``, shared evenly over its lines; default
    quantity = number of lines, at least 1); without them, package ``items`` as line numbers, then as
    line ids, one unit each. Without packages: ``items[]`` (``order_line_id`` / ``order_line_number``,
    ``quantity`` default 1). The shipping line is ignored. Pure; never raises.
    """
    by_item: dict[int, Decimal] = defaultdict(Decimal)
    unknown: list[str] = []

    def by_ref(ref: str, numbers_first: bool) -> LineRef | None:
        ref = ref.strip()
        if numbers_first and ref.isdigit() and int(ref) in index.by_number:
            return index.by_number[int(ref)]
        return index.resolve(ref)

    for package in shipment.packages:
        if package.aggregated_items:
            for agg in package.aggregated_items:
                refs = [(r, index.resolve(r)) for r in agg.order_lines if not index.is_shipping(r)]
                if not refs:
                    if agg.order_lines:
                        continue  # only the shipping line
                    unknown.append(f"aggregated item {agg.sku or '?'} without order_lines")
                    continue
                qty = agg.quantity if agg.quantity is not None else Decimal(len(refs))
                share = qty / len(refs)
                for raw, ref in refs:
                    if ref is None:
                        unknown.append(raw)
                    else:
                        by_item[ref.item_id] += share
        else:
            for raw in package.items:
                if index.is_shipping(raw):
                    continue
                ref = by_ref(raw, numbers_first=True)
                if ref is None:
                    unknown.append(raw)
                else:
                    by_item[ref.item_id] += 1
    if not shipment.packages:
        for item in shipment.items:
            raw = item.order_line_id or (str(item.order_line_number) if item.order_line_number else "")
            if not raw or index.is_shipping(raw):
                continue
            ref = index.resolve(item.order_line_id) if item.order_line_id else None
            if ref is None and item.order_line_number is not None:
                ref = index.by_number.get(item.order_line_number)
            if ref is None:
                unknown.append(raw)
            else:
                by_item[ref.item_id] += item.quantity if item.quantity is not None else Decimal(1)
    return ShippedQuantities(dict(by_item), tuple(unknown))
