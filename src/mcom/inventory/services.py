"""Use cases of the inventory module: apply OMS stock, search OMS sources, reset stock (dev).

Inventory is controlled by the OMS: local stock edits are refused in production mode
(:func:`stock_edit_guard`, registered on ``commerce.hooks.stock_edit_guard``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from mcom import envconfig
from mcom.commerce.hooks import ChangeRefused
from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus, Store
from mcom.inventory import mappers, stock
from mcom.inventory.messages import MAX_SKUS_PER_MESSAGE, Source, parse_snapshot
from mcom.service_bus import methods
from mcom.service_bus.errors import MessageError

log = logging.getLogger("mcom.inventory")

RESET_QUANTITY = Decimal("100")
RESET_CHUNK = MAX_SKUS_PER_MESSAGE  # SKUs per published stock message
SOURCE_PAGE_SIZE = 1000
MAX_SOURCE_PAGES = 100
STOCK_MANAGED_BY_OMS = "Stock is managed by the OMS (production mode)"


class InventoryError(Exception):
    """An inventory request that cannot be carried out; ``str()`` is one line."""


class StockResetRefused(InventoryError):
    """``oms:stock:reset`` outside developer mode."""


class SourceSearchFailed(InventoryError):
    """The OMS could not be asked for its sources."""


# ------------------------------------------------------------------------------------ stock in


def apply_stock_update(params: Mapping[str, Any], *, received_at: datetime | None = None) -> dict[str, Any]:
    """Apply one ``aggregate_stock_management.updated`` message; returns its outcome report.

    Raises :class:`~mcom.service_bus.errors.InvalidPayload` for a malformed snapshot (nothing is
    written). See :func:`mcom.inventory.stock.apply_snapshot` for the FULL/NONZERO/DELTA rules.
    """
    with _gc_paused():
        snapshot = parse_snapshot(params, received_at=received_at)
        outcome = stock.apply_snapshot(snapshot)
    if outcome.unknown_skus:
        log.warning(
            "stock snapshot for aggregate %s: %d unknown SKU(s), e.g. %s",
            snapshot.aggregate_id, outcome.unknown_skus, ", ".join(outcome.unknown_sample[:5]),
        )
    if outcome.not_in_snapshot:
        log.warning(
            "FULL stock snapshot for aggregate %s: %d known SKU(s) not covered so far (left unchanged)",
            snapshot.aggregate_id, outcome.not_in_snapshot,
        )
    return outcome.to_dict()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a snapshot is parsed and applied (then restore it
    as it was).

    Parsing 10,000 lines allocates some 30,000 objects (dicts, lines, quantities), and encoding
    them for the database (SQLite's ``json_each`` document) another 20,000; none of them cyclic.
    Each 700 allocations started a collection, and the older generations' ones walk the whole heap
    of the process — about a quarter of the time of applying a message for the parse, as much
    again for the encoding (sampling profile of ``bench/stock_snapshot.py``). Reference counting
    frees these objects as before; only the cycle search waits until the message is applied.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stock_edit_guard(product: Product) -> None:
    """``commerce.hooks.stock_edit_guard``: refuse local stock edits in production mode.

    Products that do not manage stock (virtual) are exempt. Raises :class:`ChangeRefused`.
    """
    if not product.manage_stock:
        return
    if envconfig.current().mode == "production":
        raise ChangeRefused(STOCK_MANAGED_BY_OMS)


def assign_aggregate(*, store: str, aggregate: str | None) -> Store:
    """Bind a store to a stock aggregate (created if new), or unbind it with ``aggregate=None``."""
    obj = Store.objects.filter(code=store).first()
    if obj is None:
        raise InventoryError(f"unknown store {store!r}")
    obj.stock_aggregate = (
        StockAggregate.objects.get_or_create(code=aggregate, defaults={"name": aggregate})[0] if aggregate else None
    )
    obj.save(update_fields=["stock_aggregate"])
    return obj


# ------------------------------------------------------------------------------------ sources


def search_sources(*, page_size: int = SOURCE_PAGE_SIZE, max_pages: int = MAX_SOURCE_PAGES) -> list[Source]:
    """Ask the OMS for its sources (``source_repository.search``, synchronous).

    Sends ``{}`` first; while the result's ``total`` is larger than what arrived, asks for the
    next page with ``offset``/``size`` (§12 #18). Stops on an empty page or a page with nothing
    new (the mock's ``total`` is a constant), and after ``max_pages``. Raises
    :class:`SourceSearchFailed` (one line) when the OMS cannot be reached or answers an error.
    """
    from mcom.service_bus.client import get_client

    found: dict[str, Source] = {}
    params: dict[str, Any] = {}
    for _ in range(max_pages):
        try:
            result = get_client().call(methods.SOURCE_SEARCH, params)
        except (MessageError, envconfig.ConfigError) as e:
            raise SourceSearchFailed(f"source search failed: {e}") from None
        page, total = mappers.source_page(result)
        before = len(found)
        for source in page:
            found.setdefault(source.id, source)
        if total is None or len(found) >= total or not page or len(found) == before:
            break
        params = {"offset": len(found), "size": page_size}
    return list(found.values())


# ------------------------------------------------------------------------------------ reset


@dataclass
class ResetResult:
    deleted_items: int = 0
    deleted_statuses: int = 0
    aggregates: int = 0
    products: int = 0
    messages: int = 0
    processed: int = 0
    stock_items: int = 0
    in_stock: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


ResetProgress = Callable[[str, int, int], None]  # (stage, done, total)


def _skus(batch: int = MAX_SKUS_PER_MESSAGE) -> Iterator[str]:
    """Every product SKU, keyset-paginated by id (memory bounded by ``batch``)."""
    last = 0
    while True:
        rows = list(Product.objects.filter(id__gt=last).order_by("id").values_list("id", "sku")[:batch])
        if not rows:
            return
        last = rows[-1][0]
        yield from (sku for _, sku in rows)


def reset_stock(*, progress: ResetProgress | None = None, quantity: Decimal = RESET_QUANTITY) -> ResetResult:
    """Developer mode only: empty both stock tables, publish quantity ``quantity`` for every
    product in every aggregate as incoming DELTA stock updates (≤ 10,000 SKUs each, logged with
    ``inbox.store_inbound``), process them with the worker and reindex.

    Raises :class:`StockResetRefused` in production mode (nothing is changed).
    """
    mode = envconfig.current().mode
    if mode != "developer":
        raise StockResetRefused(
            f"oms:stock:reset only runs in developer mode (this instance is in {mode} mode; stock is managed by the OMS)"
        )
    from mcom.service_bus import inbox, registry, worker

    if registry.inbound_route(methods.STOCK_UPDATED) is None:
        raise InventoryError("the inventory module is disabled in env.toml (modules); nothing was reset")
    report = progress or (lambda stage, done, total: None)
    result = ResetResult()
    with transaction.atomic():
        result.deleted_statuses = StockStatus.objects.all().delete()[0]
        result.deleted_items = StockItem.objects.all().delete()[0]
    aggregates = list(StockAggregate.objects.order_by("code").values_list("code", flat=True))
    result.aggregates = len(aggregates)
    result.products = Product.objects.count()
    size = RESET_CHUNK
    total_messages = len(aggregates) * -(-result.products // size)
    created_on = timezone.now()
    report("publish", 0, total_messages)
    for code in aggregates:
        lines = mappers.fixed_quantity(_skus(size), quantity)
        for snapshot in mappers.snapshots(code, "DELTA", lines, created_on=created_on, size=size):
            inbox.store_inbound(methods.STOCK_UPDATED, snapshot.to_params())
            result.messages += 1
            report("publish", result.messages, total_messages)
    report("process", 0, result.messages)
    processed = worker.run_until_idle()
    result.processed = int(processed) if isinstance(processed, int) else result.messages
    report("process", result.messages, result.messages)
    report("reindex", 0, 1)
    stock.reindex_aggregates(None)
    report("reindex", 1, 1)
    result.stock_items = StockItem.objects.count()
    result.in_stock = StockStatus.objects.filter(stock_status=True).count()
    return result
