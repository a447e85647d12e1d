"""Set-based application of OMS stock snapshots to ``cataloginventory_stock_item`` + reindex.

One message (≤ 10,000 SKUs) is applied in one transaction with a handful of statements:

1. load the lines into a temporary table ``mcom_stock_in`` (PostgreSQL: ``COPY``; SQLite:
   ``executemany``);
2. count unknown SKUs (not in the catalog) and stale lines (the stored row has a newer
   ``snapshot_at``);
3. ``INSERT … SELECT … ON CONFLICT (product_id, aggregate_id) DO UPDATE … WHERE stored.snapshot_at
   <= new snapshot_at`` — an older snapshot never overwrites newer stock, per SKU and aggregate;
4. NONZERO only: rows of the aggregate whose ``snapshot_at`` is *older* than this snapshot and
   not unlimited become 0 / out of stock. Rows written by this message, or by another part of the
   same logical snapshot (same ``created_on``), are not older, so the parts of a split NONZERO
   snapshot never zero each other's SKUs. (Between the first and the last part, SKUs of later
   parts are briefly at 0; the final state is the same whatever the order of the parts.)
5. FULL only: count the catalog's stock-managed products that no part of this snapshot has
   covered yet (``snapshot_at`` older or no row) — they are left unchanged and reported (with a
   sample of SKUs once few remain, see :func:`not_covered`);
6. reindex exactly the rows written (their ``updated_at`` equals this run's marker) into
   ``cataloginventory_stock_status`` with one ``INSERT … SELECT … ON CONFLICT``, skipping rows
   whose index value did not change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus
from mcom.inventory.messages import StockLine, StockSnapshot

SAMPLE = 50
SAMPLE_WHEN_AT_MOST = 1000
TMP = "mcom_stock_in"


@dataclass
class ApplyOutcome:
    """What applying one snapshot message did (stored as the message's outcome)."""

    aggregate_id: str
    mode: str
    created_on: str
    received: int = 0
    applied: int = 0
    stale: int = 0
    unknown_skus: int = 0
    unknown_sample: list[str] = field(default_factory=list)
    zeroed: int = 0
    not_in_snapshot: int | None = None
    not_in_snapshot_sample: list[str] = field(default_factory=list)
    reindexed: int = 0
    aggregate_created: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.not_in_snapshot is None:
            out.pop("not_in_snapshot")
            out.pop("not_in_snapshot_sample")
        return out


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _tables() -> dict[str, str]:
    return {
        "item": _q(StockItem._meta.db_table),
        "status": _q(StockStatus._meta.db_table),
        "product": _q(Product._meta.db_table),
        "tmp": TMP,
    }


def _dt(value: datetime) -> Any:
    """A datetime parameter in the form the backend stores it (SQLite: naive-UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def load_lines(cur: CursorWrapper, lines: tuple[StockLine, ...] | list[StockLine]) -> None:
    """(Re)fill the temporary table with ``lines`` (one row per SKU)."""
    if _is_postgres():
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {TMP} "
            "(sku varchar(64) PRIMARY KEY, qty numeric(12, 4) NOT NULL, unlimited boolean NOT NULL) "
            "ON COMMIT DELETE ROWS"
        )
        cur.execute(f"DELETE FROM {TMP}")  # noqa: S608 - rows of an earlier apply in the same transaction
        with cur.cursor.copy(f"COPY {TMP} (sku, qty, unlimited) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for line in lines:
                copy.write_row((line.sku, line.quantity, line.unlimited))
        cur.execute(f"ANALYZE {TMP}")
    else:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {TMP} (sku TEXT PRIMARY KEY, qty NUMERIC NOT NULL, unlimited INTEGER NOT NULL)"
        )
        cur.execute(f"DELETE FROM {TMP}")  # noqa: S608 - fixed table name
        cur.executemany(
            f"INSERT INTO {TMP} (sku, qty, unlimited) VALUES (%s, %s, %s)",  # noqa: S608
            [(line.sku, str(line.quantity), int(line.unlimited)) for line in lines],
        )


def _scalar(cur: CursorWrapper, sql: str, params: list[Any]) -> int:
    cur.execute(sql, params)
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _column(cur: CursorWrapper, sql: str, params: list[Any]) -> list[str]:
    cur.execute(sql, params)
    return [str(r[0]) for r in cur.fetchall()]


def upsert_items(cur: CursorWrapper, aggregate_pk: int, snapshot_at: Any, marker: Any) -> int:
    """Step 3: upsert the loaded lines into the stock items of one aggregate; returns rows written."""
    t = _tables()
    cur.execute(
        f"INSERT INTO {t['item']} (product_id, aggregate_id, qty, is_in_stock, unlimited, snapshot_at, updated_at) "  # noqa: S608
        f"SELECT p.id, %s, s.qty, (s.unlimited OR s.qty > 0), s.unlimited, %s, %s "
        f"FROM {t['tmp']} s JOIN {t['product']} p ON p.sku = s.sku WHERE true "
        "ON CONFLICT (product_id, aggregate_id) DO UPDATE SET qty = excluded.qty, "
        "is_in_stock = excluded.is_in_stock, unlimited = excluded.unlimited, "
        "snapshot_at = excluded.snapshot_at, updated_at = excluded.updated_at "
        f"WHERE {t['item']}.snapshot_at IS NULL OR {t['item']}.snapshot_at <= excluded.snapshot_at",
        [aggregate_pk, snapshot_at, marker],
    )
    return max(cur.rowcount, 0)


def zero_missing(cur: CursorWrapper, aggregate_pk: int, snapshot_at: Any, marker: Any) -> int:
    """Step 4 (NONZERO): older, limited rows of the aggregate become 0 / out of stock."""
    t = _tables()
    cur.execute(
        f"UPDATE {t['item']} SET qty = 0, is_in_stock = %s, snapshot_at = %s, updated_at = %s "  # noqa: S608
        "WHERE aggregate_id = %s AND NOT unlimited AND (snapshot_at IS NULL OR snapshot_at < %s)",
        [False, snapshot_at, marker, aggregate_pk, snapshot_at],
    )
    return max(cur.rowcount, 0)


_STATUS_UPSERT = (
    "INSERT INTO {status} (product_id, aggregate_id, qty, stock_status) "
    "SELECT si.product_id, si.aggregate_id, si.qty, (si.is_in_stock OR si.unlimited OR NOT p.manage_stock) "
    "{source} WHERE {where} "
    "ON CONFLICT (product_id, aggregate_id) DO UPDATE SET qty = excluded.qty, stock_status = excluded.stock_status "
    "WHERE {status}.qty <> excluded.qty OR {status}.stock_status <> excluded.stock_status"
)


def reindex_written(cur: CursorWrapper, aggregate_pk: int, marker: Any, *, whole_aggregate: bool) -> int:
    """Step 6: index the rows written by this run (``updated_at = marker``); returns index rows written.

    ``whole_aggregate=False`` reaches the rows through the temporary table (index lookups);
    ``True`` scans the aggregate (needed after NONZERO zeroing touched rows outside the message).
    """
    t = _tables()
    if whole_aggregate:
        source = f"FROM {t['item']} si JOIN {t['product']} p ON p.id = si.product_id"
    else:
        source = (
            f"FROM {t['tmp']} s JOIN {t['product']} p ON p.sku = s.sku "
            f"JOIN {t['item']} si ON si.product_id = p.id AND si.aggregate_id = %s"
        )
    sql = _STATUS_UPSERT.format(status=t["status"], source=source, where="si.aggregate_id = %s AND si.updated_at = %s")
    params = [aggregate_pk, marker] if whole_aggregate else [aggregate_pk, aggregate_pk, marker]
    cur.execute(sql, params)
    return max(cur.rowcount, 0)


def not_covered(cur: CursorWrapper, aggregate_pk: int, snapshot_at: Any) -> tuple[int, list[str]]:
    """Step 5 (FULL): stock-managed products no part of this snapshot has covered yet, and a sample.

    Counted without an anti-join (``managed products − covered managed items``): single-table
    counts and a join whose inner side is the product primary key, so a planner misled by
    statistics that lag behind a bulk load cannot make it quadratic. The sample (first SKUs by
    id) is only looked up when few remain (≤ :data:`SAMPLE_WHEN_AT_MOST`), i.e. when the last
    part of a snapshot has arrived — the moment the list is worth reading.
    """
    t = _tables()
    managed = _scalar(cur, f"SELECT COUNT(*) FROM {t['product']} WHERE manage_stock", [])  # noqa: S608
    covered = _scalar(
        cur,
        f"SELECT COUNT(*) FROM {t['item']} si JOIN {t['product']} p ON p.id = si.product_id "  # noqa: S608
        "WHERE si.aggregate_id = %s AND si.snapshot_at >= %s AND p.manage_stock",
        [aggregate_pk, snapshot_at],
    )
    missing = max(managed - covered, 0)
    sample: list[str] = []
    if 0 < missing <= SAMPLE_WHEN_AT_MOST:
        sample = _column(
            cur,
            f"SELECT p.sku FROM {t['product']} p LEFT JOIN {t['item']} si "  # noqa: S608
            "ON si.product_id = p.id AND si.aggregate_id = %s "
            "WHERE p.manage_stock AND (si.id IS NULL OR si.snapshot_at IS NULL OR si.snapshot_at < %s) "
            f"ORDER BY p.id LIMIT {SAMPLE}",
            [aggregate_pk, snapshot_at],
        )
    return missing, sample


def refresh_statistics(cur: CursorWrapper, written: int) -> bool:
    """PostgreSQL: ``ANALYZE`` the stock-item (and, never analysed, product) table after a bulk load.

    Without statistics the planner believes a freshly filled table is nearly empty and picks
    nested loops that turn the anti-join of the FULL coverage report quadratic. Re-analysed when
    the table was never analysed or this message wrote more than 20 % of its estimated rows — a
    handful of times during an initial load, never in steady state. Returns whether it ran.
    """
    if not _is_postgres() or written <= 0:
        return False
    t = _tables()
    cur.execute(
        "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s) AND relkind = 'r'",
        [StockItem._meta.db_table, Product._meta.db_table],
    )
    tuples = {str(name): float(n) for name, n in cur.fetchall()}
    ran = False
    if tuples.get(Product._meta.db_table, 0.0) < 0:
        cur.execute(f"ANALYZE {t['product']}")
        ran = True
    item_rows = tuples.get(StockItem._meta.db_table, -1.0)
    if item_rows < 0 or written > 0.2 * max(item_rows, 1.0):
        cur.execute(f"ANALYZE {t['item']}")
        ran = True
    return ran


def reindex_aggregates(aggregate_pks: list[int] | None = None) -> int:
    """Rebuild the stock index of some aggregates (or all) from the stock items, set-based.

    Index rows without a stock item are removed. Returns the number of index rows written.
    """
    t = _tables()
    written = 0
    with transaction.atomic(), connection.cursor() as cur:
        if aggregate_pks is None:
            cur.execute(
                f"DELETE FROM {t['status']} WHERE NOT EXISTS (SELECT 1 FROM {t['item']} si "  # noqa: S608
                f"WHERE si.product_id = {t['status']}.product_id AND si.aggregate_id = {t['status']}.aggregate_id)"
            )
            sql = _STATUS_UPSERT.format(
                status=t["status"], source=f"FROM {t['item']} si JOIN {t['product']} p ON p.id = si.product_id",
                where="true",
            )
            cur.execute(sql)
            return max(cur.rowcount, 0)
        for pk in aggregate_pks:
            cur.execute(
                f"DELETE FROM {t['status']} WHERE aggregate_id = %s AND NOT EXISTS (SELECT 1 FROM {t['item']} si "  # noqa: S608
                f"WHERE si.product_id = {t['status']}.product_id AND si.aggregate_id = %s)",
                [pk, pk],
            )
            sql = _STATUS_UPSERT.format(
                status=t["status"], source=f"FROM {t['item']} si JOIN {t['product']} p ON p.id = si.product_id",
                where="si.aggregate_id = %s",
            )
            cur.execute(sql, [pk])
            written += max(cur.rowcount, 0)
    return written


def apply_snapshot(snapshot: StockSnapshot) -> ApplyOutcome:
    """Apply one snapshot message to one aggregate (see the module docstring); one transaction.

    An unknown aggregate is created (the OMS owns aggregates; linking it to a store is an admin
    decision, ``Store.stock_aggregate``) and reported as ``aggregate_created``. Unknown SKUs are
    reported, not fatal. Idempotent: applying the same message again writes the same state.
    """
    t = _tables()
    out = ApplyOutcome(snapshot.aggregate_id, snapshot.mode, snapshot.created_on.isoformat(), received=len(snapshot.lines))
    snap_at = _dt(snapshot.created_on)
    with transaction.atomic():
        aggregate, out.aggregate_created = StockAggregate.objects.get_or_create(
            code=snapshot.aggregate_id, defaults={"name": snapshot.aggregate_id}
        )
        marker = _dt(timezone.now())
        with connection.cursor() as cur:
            load_lines(cur, snapshot.lines)
            if snapshot.lines:
                unknown = f"FROM {t['tmp']} s WHERE NOT EXISTS (SELECT 1 FROM {t['product']} p WHERE p.sku = s.sku)"  # noqa: S608 - fixed table names
                out.unknown_skus = _scalar(cur, f"SELECT COUNT(*) {unknown}", [])  # noqa: S608
                if out.unknown_skus:
                    out.unknown_sample = _column(cur, f"SELECT s.sku {unknown} ORDER BY s.sku LIMIT {SAMPLE}", [])  # noqa: S608
                out.stale = _scalar(
                    cur,
                    f"SELECT COUNT(*) FROM {t['tmp']} s JOIN {t['product']} p ON p.sku = s.sku "  # noqa: S608
                    f"JOIN {t['item']} si ON si.product_id = p.id AND si.aggregate_id = %s WHERE si.snapshot_at > %s",
                    [aggregate.pk, snap_at],
                )
                out.applied = upsert_items(cur, aggregate.pk, snap_at, marker)
            if snapshot.mode == "NONZERO":
                out.zeroed = zero_missing(cur, aggregate.pk, snap_at, marker)
            refresh_statistics(cur, out.applied + out.zeroed)
            out.reindexed = reindex_written(cur, aggregate.pk, marker, whole_aggregate=snapshot.mode == "NONZERO")
            if snapshot.mode == "FULL":
                out.not_in_snapshot, out.not_in_snapshot_sample = not_covered(cur, aggregate.pk, snap_at)
            if not _is_postgres():  # PostgreSQL: ON COMMIT DELETE ROWS
                cur.execute(f"DELETE FROM {TMP}")  # noqa: S608
    return out
