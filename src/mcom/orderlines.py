"""How an order's items become OMS order lines: the one numbering shared by the export and post-sales.

**One OMS line per unit.** An OMS order line has no quantity, and shipments account for lines
through ``aggregated_items[] {quantity, order_lines[] (line ids)}``: several line ids add up to one
quantity, which only makes sense when a line is one unit. So an item ordered 3 times becomes 3
lines. Line ids: an item of quantity 1 keeps its commerce item id (``"8"``); an item of quantity
*n* > 1 becomes ``"<item id>-1"`` … ``"<item id>-n"``. ``line_number`` runs 1..N over the order in
item order; the shipping line (id ``SHIPPING``) is last. Fractional quantities cannot be expanded
and raise :class:`MappingError`. Amounts of an item are split over its units to the cent (the
remainder goes to the last unit), so the lines always add up to the item's row amounts.

A configurable item counts against its parent item (the parent carries the price); a bundle is no
line of its own: each child unit is a line whose parent is the bundle's item.

The order export (:mod:`mcom.sales.mappers`) sends these lines; returns and refunds
(:mod:`mcom.postsales.lines`) name them back — neither invents its own numbering.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from mcom.commerce.models import OrderItem, Product
from mcom.wire import CENT, SHIPPING_LINE_ID

ZERO = Decimal("0")
HUNDRED = Decimal("100")


class MappingError(ValueError):
    """The order cannot be expressed as an OMS order (the message says why, in one line)."""


# ----------------------------------------------------------------------------------- money


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` into parts proportional to ``weights``, to the cent, summing exactly to ``total``.

    All-zero weights split equally. The rounding remainder goes to the last part.
    """
    n = len(weights)
    if n == 0:
        return []
    if n == 1:
        return [total]
    weight_sum = sum(weights, ZERO)
    if weight_sum <= 0 or all(w == 1 for w in weights):
        # Equal split: every part but the last is ``total * 1 / n`` rounded, computed once.
        part = (total / n).quantize(CENT, rounding=ROUND_HALF_UP)
        return [*([part] * (n - 1)), total - part * (n - 1)]
    parts = [(total * w / weight_sum).quantize(CENT, rounding=ROUND_HALF_UP) for w in weights[:-1]]
    return [*parts, total - sum(parts, ZERO)]


def percent(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole * HUNDRED).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if whole else ZERO




@dataclass(frozen=True, slots=True)
class LineRef:
    """One OMS line of an item: its id and number, the item it counts against, the unit index."""

    line_id: str
    line_number: int
    item_id: int
    unit: int
    parent_item_id: int | None = None


@dataclass(frozen=True, slots=True)
class UnitAmounts:
    net: Decimal
    tax: Decimal
    discount: Decimal
    original_price: Decimal


@dataclass(frozen=True, slots=True)
class PlannedLine:
    """A line to map: the item it comes from, the item carrying the price, its ref and amounts."""

    item: OrderItem
    priced: OrderItem
    ref: LineRef
    sku: str
    amounts: UnitAmounts
    parent: OrderItem | None


def _whole_units(item: OrderItem) -> int:
    qty = Decimal(item.qty_ordered)
    units = int(qty)
    if units < 1 or qty != units:
        raise MappingError(
            f"item {item.sku} (id {item.pk}) has quantity {qty.normalize()}; OMS lines are whole units"
        )
    return units


def _line_ids(item: OrderItem, units: int) -> list[str]:
    return [str(item.pk)] if units == 1 else [f"{item.pk}-{k}" for k in range(1, units + 1)]


def _row(item: OrderItem) -> tuple[Decimal, Decimal, Decimal]:
    """(net after discount, tax, discount) of an item's row."""
    discount = Decimal(item.discount_amount)
    return Decimal(item.row_total) - discount, Decimal(item.tax_amount), discount


def _unit_amounts(net: Decimal, tax: Decimal, discount: Decimal, original: Decimal,
                  weights: Sequence[Decimal]) -> list[UnitAmounts]:
    nets, taxes, discounts = allocate(net, weights), allocate(tax, weights), allocate(discount, weights)
    return [UnitAmounts(n, t, d, original) for n, t, d in zip(nets, taxes, discounts, strict=True)]


def _children(items: Sequence[OrderItem]) -> dict[int | None, list[OrderItem]]:
    by_parent: dict[int | None, list[OrderItem]] = defaultdict(list)
    for item in items:
        by_parent[item.parent_id].append(item)
    return by_parent


def _unit_price(item: OrderItem) -> Decimal:
    product = item.product if item.product_id is not None else None
    return Decimal(product.price) if product is not None else ZERO


def plan_lines(items: Sequence[OrderItem]) -> list[PlannedLine]:
    """Expand an order's items into OMS goods lines (see the module docstring). Raises MappingError."""
    ordered = sorted(items, key=lambda i: (i.pk or 0))
    by_parent = _children(ordered)
    planned: list[PlannedLine] = []
    number = 0

    def add(item: OrderItem, priced: OrderItem, sku: str, units: list[UnitAmounts], ids: list[str],
            parent: OrderItem | None) -> None:
        nonlocal number
        for k, (line_id, amounts) in enumerate(zip(ids, units, strict=True), 1):
            number += 1
            ref = LineRef(line_id, number, int(item.pk or 0), k, parent.pk if parent is not None else None)
            planned.append(PlannedLine(item, priced, ref, sku, amounts, parent))

    for item in by_parent.get(None, []):
        kids = by_parent.get(item.pk, []) if item.pk is not None else []
        if item.product_type == Product.TYPE_BUNDLE and kids:
            child_units = [(kid, _whole_units(kid)) for kid in kids]
            if any(Decimal(kid.row_total) for kid in kids):  # dynamic price: children carry amounts
                for kid, n in child_units:
                    net, tax, discount = _row(kid)
                    original = Decimal(kid.price_incl_tax)
                    add(kid, kid, kid.sku, _unit_amounts(net, tax, discount, original, [Decimal(1)] * n),
                        _line_ids(kid, n), item)
                continue
            weights = [_unit_price(kid) for kid, n in child_units for _ in range(n)]
            net, tax, discount = _row(item)
            units = _unit_amounts(net, tax, discount, ZERO, weights)
            bundle_units = _whole_units(item)
            # original price: the bundle's price incl. tax, spread like the amounts
            originals = allocate(Decimal(item.price_incl_tax) * bundle_units, weights)
            pos = 0
            for kid, n in child_units:
                share = [UnitAmounts(u.net, u.tax, u.discount, o)
                         for u, o in zip(units[pos:pos + n], originals[pos:pos + n], strict=True)]
                pos += n
                add(kid, item, kid.sku, share, _line_ids(kid, n), item)
            continue
        n = _whole_units(item)
        net, tax, discount = _row(item)
        sku = kids[0].sku if item.product_type == Product.TYPE_CONFIGURABLE and kids else item.sku
        add(item, item, sku, _unit_amounts(net, tax, discount, Decimal(item.price_incl_tax), [Decimal(1)] * n),
            _line_ids(item, n), None)
    return planned


@dataclass(frozen=True)
class LineIndex:
    """OMS line id / line number → :class:`LineRef` of an order (the inverse of :func:`plan_lines`)."""

    by_id: Mapping[str, LineRef]
    by_number: Mapping[int, LineRef]
    shipping_line_number: int

    def resolve(self, ref: str) -> LineRef | None:
        """A line by id (``"8"``, ``"8-2"``)."""
        return self.by_id.get(ref.strip())

    def is_shipping(self, ref: str) -> bool:
        """True for the shipping line: its id, or its number when that is no known line id."""
        ref = ref.strip()
        if ref in self.by_id:
            return False
        return ref.upper() == SHIPPING_LINE_ID or (ref.isdigit() and int(ref) == self.shipping_line_number
                                                   and int(ref) not in self.by_number)


def line_index(items: Sequence[OrderItem]) -> LineIndex:
    """The line index of an order's items. Raises MappingError like :func:`plan_lines`."""
    refs = [p.ref for p in plan_lines(items)]
    return LineIndex({r.line_id: r for r in refs}, {r.line_number: r for r in refs}, len(refs) + 1)


# ----------------------------------------------------------------------------------- order
