"""Identity of an order's lines on the wire, exactly as the sales module exported them.

Returns (§8.7/§8.8) and refunds (§8.9) name order lines by the ``id``/``line_number`` that
``order_management.create`` sent. The sales module sends **one OMS line per unit** (an item of
quantity 3 is lines ``"<item id>-1"`` … ``"<item id>-3"``; quantity 1 keeps ``"<item id>"``; a
configurable counts against its parent item, a bundle against its children); this module reads that
numbering from :func:`mcom.orderlines.plan_lines` and never invents its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcom import orderlines
from mcom.commerce.models import Order, OrderItem
from mcom.wire import SHIPPING_LINE_ID


class LinesUnavailable(ValueError):
    """The order's lines cannot be expressed on the wire (e.g. a fractional quantity)."""


@dataclass(frozen=True)
class LineRef:
    """One OMS line: wire ``id``, ``line_number``, the commerce item it counts against, unit index."""

    id: str
    line_number: int
    item: OrderItem
    unit: int
    sku: str


@dataclass(frozen=True)
class OrderLines:
    """The exported lines of one order, looked up by wire id, line number or commerce item."""

    refs: tuple[LineRef, ...]
    shipping_line_number: int
    _by_id: dict[str, LineRef] = field(default_factory=dict, compare=False, repr=False)
    _by_number: dict[int, LineRef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for ref in self.refs:
            self._by_id[ref.id] = ref
            self._by_number[ref.line_number] = ref

    @property
    def items(self) -> list[OrderItem]:
        """The items that lines count against, in line order, each once."""
        seen: dict[int, OrderItem] = {}
        for ref in self.refs:
            seen.setdefault(ref.item.pk, ref.item)
        return list(seen.values())

    def item(self, item_id: int) -> OrderItem | None:
        return next((r.item for r in self.refs if r.item.pk == item_id), None)

    def items_with_sku(self, sku: str) -> list[OrderItem]:
        return [i for i in self.items if i.sku == sku]

    def units_of(self, item_id: int) -> list[LineRef]:
        return [r for r in self.refs if r.item.pk == item_id]

    def by_wire_id(self, line_id: str) -> LineRef | None:
        return self._by_id.get(line_id.strip())

    def by_line_number(self, number: int) -> LineRef | None:
        return self._by_number.get(number)

    def resolve(self, line_id: str, line_number: str = "") -> LineRef | None:
        """A line by wire id, else (no id given) by line number."""
        if line_id.strip():
            return self.by_wire_id(line_id)
        number = _int(line_number)
        return self.by_line_number(number) if number is not None else None

    def is_shipping(self, line_id: str, line_number: str = "") -> bool:
        if line_id.strip():
            return line_id.strip().upper() == SHIPPING_LINE_ID
        return _int(line_number) == self.shipping_line_number


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else None


def order_lines(order: Order) -> OrderLines:
    """The order's exported lines (as :func:`mcom.orderlines.plan_lines` numbers them).

    Raises :class:`LinesUnavailable` when the order cannot be mapped to lines."""
    items = list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))
    try:
        planned = orderlines.plan_lines(items)
    except orderlines.MappingError as e:
        raise LinesUnavailable(str(e)) from None
    by_pk = {i.pk: i for i in items}
    refs = tuple(
        LineRef(id=p.ref.line_id, line_number=p.ref.line_number, item=by_pk[p.ref.item_id], unit=p.ref.unit,
                sku=p.sku)
        for p in sorted(planned, key=lambda p: p.ref.line_number)
    )
    return OrderLines(refs=refs, shipping_line_number=len(refs) + 1)
