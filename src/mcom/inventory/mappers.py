"""Pure mapping for the inventory module: snapshot chunks and source-search pages.

No database access, no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from mcom.inventory.messages import MAX_SKUS_PER_MESSAGE, Mode, Source, StockLine, StockSnapshot, parse_source


def snapshots(
    aggregate_id: str,
    mode: Mode,
    lines: Iterable[StockLine],
    *,
    created_on: datetime,
    size: int = MAX_SKUS_PER_MESSAGE,
) -> Iterator[StockSnapshot]:
    """Split ``lines`` into snapshot messages of at most ``size`` SKUs (all with one ``created_on``).

    Yields nothing for no lines. Streams: holds one chunk at a time.
    """
    chunk: list[StockLine] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield StockSnapshot(aggregate_id, created_on, mode, tuple(chunk))
            chunk = []
    if chunk:
        yield StockSnapshot(aggregate_id, created_on, mode, tuple(chunk))


def fixed_quantity(skus: Iterable[str], quantity: Decimal) -> Iterator[StockLine]:
    """The same quantity for every SKU (stock reset)."""
    for sku in skus:
        yield StockLine(sku, quantity)


def source_page(result: Any) -> tuple[list[Source], int | None]:
    """One ``source_repository.search`` result → ``(sources, total)``.

    ``[]``, ``{}`` and ``null`` mean no sources (§2 leniency); a bare list is a list of sources;
    ``total`` is None when absent or not a number. Items that are not objects are skipped.
    """
    if isinstance(result, list):
        items: Sequence[Any] = result
        total = None
    elif isinstance(result, Mapping):
        raw_items = result.get("items")
        items = raw_items if isinstance(raw_items, list) else []
        raw_total = result.get("total")
        try:
            total = int(raw_total) if raw_total is not None and not isinstance(raw_total, bool) else None
        except (TypeError, ValueError):
            total = None
    else:
        return [], None
    return [parse_source(i) for i in items if isinstance(i, Mapping)], total
