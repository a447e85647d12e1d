"""Typed params of the inventory module's OMS messages (oms-protocol.md §8.4, §8.5).

Parsing is strict about what we need and lenient about form: quantities as numbers or numeric
strings, modes in any case, dates in the formats of §12 #17 (naive = UTC), and the capitalised
keys fake-mom-api emits. Anything unusable raises :class:`~mcom.service_bus.errors.InvalidPayload`
with a message naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, NamedTuple

from mcom.service_bus.errors import InvalidPayload

Mode = Literal["FULL", "DELTA", "NONZERO"]
MODES: Final[tuple[str, ...]] = ("FULL", "DELTA", "NONZERO")
MAX_SKUS_PER_MESSAGE: Final = 10_000
MAX_QTY: Final = Decimal("99999999.9999")  # fits DECIMAL(12, 4)
_MAX_INT_QTY: Final = 99_999_999  # the largest integer quantity within MAX_QTY
_FOUR_PLACES: Final = Decimal("0.0001")


class StockLine(NamedTuple):
    """One SKU of a snapshot. A tuple ``(sku, quantity, unlimited)``: cheap to build by the
    ten thousand, and usable as it is as a row for the database."""

    sku: str
    quantity: Decimal
    unlimited: bool = False

    @property
    def in_stock(self) -> bool:
        return self.unlimited or self.quantity > 0


@dataclass(frozen=True)
class StockSnapshot:
    """One ``aggregate_stock_management.updated`` message (one part of a logical snapshot).

    ``lines`` holds one line per SKU (a SKU repeated in the message: the last one wins).
    """

    aggregate_id: str
    created_on: datetime
    mode: Mode
    lines: tuple[StockLine, ...] = field(default=())

    @property
    def entity_key(self) -> str:
        """``stock:<aggregate id>``: snapshots of one aggregate are applied in arrival order."""
        return f"stock:{self.aggregate_id}"

    def to_params(self) -> dict[str, Any]:
        stock: list[dict[str, Any]] = []
        for line in self.lines:
            entry: dict[str, Any] = {"sku": line.sku, "quantity": _json_number(line.quantity)}
            if line.unlimited:
                entry["unlimited"] = True
            stock.append(entry)
        return {
            "snapshot": {
                "aggregate_id": self.aggregate_id,
                "created_on": self.created_on.astimezone(UTC).isoformat(),
                "mode": self.mode,
                "stock": stock,
            }
        }


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# ---------------------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def parse_datetime(value: Any) -> datetime:
    """Lenient date parser (§12 #17): ISO 8601 with ``T`` or space, optional fraction and offset
    (``Z``, ``+02:00``, ``+0200``, ``+02``, `` UTC``), a bare date, or a Unix timestamp number.
    Naive values are UTC. Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    m = _DATE_RE.match(value)
    if not m:
        raise ValueError(f"not a date: {value!r}")
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone and zone.upper() not in ("Z", "UTC"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = timezone(sign * offset)
    return datetime(
        int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro, tzinfo=tz
    ).astimezone(UTC)


# ---------------------------------------------------------------------------------------- values


def parse_quantity(value: Any, where: str) -> Decimal:
    """A finite quantity from a number or numeric string. Raises :class:`InvalidPayload`."""
    if type(value) is int and -_MAX_INT_QTY <= value <= _MAX_INT_QTY:  # the common case, fast
        return Decimal(value)
    if isinstance(value, bool) or value is None:
        raise InvalidPayload(f"{where}: quantity must be a number, got {value!r}")
    try:
        qty = Decimal(value) if isinstance(value, str) else Decimal(str(value))  # Decimal() strips blanks
    except (InvalidOperation, ValueError):
        raise InvalidPayload(f"{where}: quantity must be a number, got {value!r}") from None
    if not qty.is_finite():
        raise InvalidPayload(f"{where}: quantity must be finite, got {value!r}")
    if abs(qty) > MAX_QTY:
        raise InvalidPayload(f"{where}: quantity {value!r} is out of range")
    exponent = qty.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:  # more decimals than the column keeps
        return qty.quantize(_FOUR_PLACES)
    return qty


def parse_bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "y", "0", "false", "no", "n", ""):
        return value.strip().lower() in ("1", "true", "yes", "y")
    raise InvalidPayload(f"{where}: expected true or false, got {value!r}")


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


_CAMEL = {k: _camel(k) for k in ("snapshot", "aggregate_id", "created_on", "mode", "stock", "sku", "quantity", "unlimited")}


def _get(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]``, else its CamelCase spelling (fake-mom-api: ``AggregateId``, ``Stock``, …)."""
    if key in obj:
        return obj[key]
    return obj.get(_CAMEL.get(key) or _camel(key))


def parse_snapshot(params: Mapping[str, Any], *, received_at: datetime | None = None) -> StockSnapshot:
    """Validate ``params`` of ``aggregate_stock_management.updated`` into a :class:`StockSnapshot`.

    A missing ``created_on`` falls back to ``received_at`` (the time the message was logged).
    Raises :class:`InvalidPayload` naming the first bad field.
    """
    snap = _get(params, "snapshot") if isinstance(params, Mapping) else None
    if not isinstance(snap, Mapping):
        raise InvalidPayload("snapshot: must be an object")
    aggregate = _get(snap, "aggregate_id")
    if isinstance(aggregate, bool) or not isinstance(aggregate, str | int) or not str(aggregate).strip():
        raise InvalidPayload("snapshot.aggregate_id: required (non-empty string)")
    raw_mode = _get(snap, "mode")
    mode = str(raw_mode).strip().upper() if isinstance(raw_mode, str) else ""
    if mode not in MODES:
        raise InvalidPayload(f"snapshot.mode: must be one of {', '.join(MODES)}, got {raw_mode!r}")
    raw_created = _get(snap, "created_on")
    if raw_created in (None, ""):
        if received_at is None:
            raise InvalidPayload("snapshot.created_on: required")
        created = received_at.astimezone(UTC)
    else:
        try:
            created = parse_datetime(raw_created)
        except ValueError:
            raise InvalidPayload(f"snapshot.created_on: not a date: {raw_created!r}") from None
    stock = _get(snap, "stock")
    if stock is None:
        stock = []
    if not isinstance(stock, Sequence) or isinstance(stock, str | bytes):
        raise InvalidPayload("snapshot.stock: must be a list")
    lines = _parse_lines(stock)
    return StockSnapshot(str(aggregate).strip(), created, mode, tuple(lines.values()))  # type: ignore[arg-type]


def _parse_lines(stock: Sequence[Any]) -> dict[str, StockLine]:
    """The ``stock`` entries as lines by SKU (a repeated SKU: the last one wins, in its place).

    The hot loop of a 10,000-SKU message: plain dict lookups for the snake_case form, each
    distinct quantity string parsed once, the field path only formatted for an error.
    """
    lines: dict[str, StockLine] = {}
    quantities: dict[str, Decimal] = {}  # raw string → parsed (Decimal is immutable)
    for i, entry in enumerate(stock):
        if type(entry) is dict and "sku" in entry:  # snake_case (everyone but fake-mom-api): fast
            sku, raw_qty, raw_unlimited = entry["sku"], entry.get("quantity"), entry.get("unlimited")
        elif isinstance(entry, Mapping):
            sku, raw_qty, raw_unlimited = _get(entry, "sku"), _get(entry, "quantity"), _get(entry, "unlimited")
        else:
            raise InvalidPayload(f"snapshot.stock[{i}]: must be an object")
        if type(sku) is not str or not sku or sku[0].isspace() or sku[-1].isspace():
            if isinstance(sku, bool) or not isinstance(sku, str | int) or not str(sku).strip():
                raise InvalidPayload(f"snapshot.stock[{i}].sku: required (non-empty string)")
            sku = str(sku).strip()
        if len(sku) > 64:
            raise InvalidPayload(f"snapshot.stock[{i}].sku: longer than 64 characters")
        if type(raw_qty) is str:
            qty = quantities.get(raw_qty)
            if qty is None:
                qty = quantities[raw_qty] = parse_quantity(raw_qty, f"snapshot.stock[{i}].quantity")
        elif type(raw_qty) is int and -_MAX_INT_QTY <= raw_qty <= _MAX_INT_QTY:
            qty = Decimal(raw_qty)
        else:
            qty = parse_quantity(raw_qty, f"snapshot.stock[{i}].quantity")
        if raw_unlimited is None or raw_unlimited is False:
            unlimited = False
        elif raw_unlimited is True:
            unlimited = True
        else:
            unlimited = parse_bool(raw_unlimited, f"snapshot.stock[{i}].unlimited")
        if sku in lines:
            del lines[sku]
        lines[sku] = StockLine(sku, qty, unlimited)
    return lines


# ---------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One OMS source (warehouse, store) of ``source_repository.search`` (§8.5)."""

    id: str
    name: str
    type: str
    aggregate_ids: tuple[str, ...]
    city: str = ""
    country_code: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def parse_source(item: Mapping[str, Any]) -> Source:
    address = item.get("address") if isinstance(item.get("address"), Mapping) else {}
    assert isinstance(address, Mapping)
    aggs = item.get("aggregate_ids")
    return Source(
        id=str(item.get("id", "")),
        name=str(item.get("name") or ""),
        type=str(item.get("type") or ""),
        aggregate_ids=tuple(str(a) for a in aggs) if isinstance(aggs, list) else (),
        city=str(address.get("city") or ""),
        country_code=str(address.get("country_code") or ""),
        raw=dict(item),
    )
