"""Benchmark: 100,000 SKUs arriving as 10 FULL stock messages of 10,000 — stored to reindexed.

    .venv/bin/python bench/stock_snapshot.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/stock_snapshot.py --db postgresql --skus 50000

Per database, in a child process with a fresh database:

1. 100,000 products and one aggregate; 10 FULL snapshot messages (same ``created_on``) stored in
   the message log with ``inbox.store_inbound`` (not timed);
2. **connector**: ``worker.run_until_idle()`` — parse, stale/unknown checks, bulk upsert into
   ``cataloginventory_stock_item`` and reindex of ``cataloginventory_stock_status``, message
   outcomes written (timed);
3. **baseline**, same run, same database, emptied stock tables: the raw bulk upsert of the same
   100,000 rows ``(product_id, aggregate_id) → qty, in_stock`` the fastest way the database
   offers (PostgreSQL: COPY → temp table → INSERT … SELECT … ON CONFLICT; SQLite: executemany
   into a temp table → INSERT … SELECT … ON CONFLICT), product ids known up front, no reindex;
4. the same 10 messages applied again with every quantity changed (update path), timed;
5. peak memory: process peak RSS, and tracemalloc's peak of Python allocations while applying.

Prints seconds, rows/s and the ratio baseline ÷ connector (1.0 = as fast as the raw upsert).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from common import fresh_database

PER_MESSAGE = 10_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def database(kind: str) -> Any:
    return fresh_database(kind, "stock")


def setup_django(db_url: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="mcom-bench-"))
    (root / "etc").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    os.environ.update({"MCOM_ROOT": str(root), "MCOM_DB__URL": db_url, "MCOM_MODE": "developer",
                       "MCOM_MODULES": "inventory", "MCOM_QUEUE__MESSAGE_TIME_LIMIT": "600"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def store_messages(skus: list[str], created_on: str, qty_of: int) -> int:
    from mcom.service_bus import inbox, methods

    n = 0
    for start in range(0, len(skus), PER_MESSAGE):
        stock = [{"sku": s, "quantity": str((i + qty_of) % 50)} for i, s in enumerate(skus[start:start + PER_MESSAGE])]
        inbox.store_inbound(methods.STOCK_UPDATED, {"snapshot": {
            "aggregate_id": "EU", "created_on": created_on, "mode": "FULL", "stock": stock}})
        n += 1
    return n


def empty_stock() -> None:
    from mcom.commerce.models import StockItem, StockStatus

    StockStatus.objects.all().delete()
    StockItem.objects.all().delete()


def raw_upsert(rows: list[tuple[int, int, str, bool]]) -> None:
    """The baseline: the fastest plain bulk upsert of ``rows`` into the stock-item table."""
    from django.db import connection, transaction
    from django.utils import timezone

    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table = "cataloginventory_stock_item"
    merge = (
        f"INSERT INTO {table} (product_id, aggregate_id, qty, is_in_stock, unlimited, snapshot_at, updated_at) "
        "SELECT product_id, aggregate_id, qty, in_stock, %s, %s, %s FROM bench_in WHERE true "
        "ON CONFLICT (product_id, aggregate_id) DO UPDATE SET qty = excluded.qty, is_in_stock = excluded.is_in_stock, "
        "snapshot_at = excluded.snapshot_at, updated_at = excluded.updated_at"
    )
    with transaction.atomic(), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("CREATE TEMP TABLE bench_in (product_id bigint, aggregate_id bigint, qty numeric(12,4),"
                        " in_stock boolean) ON COMMIT DROP")
            with cur.cursor.copy("COPY bench_in FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cur.execute("CREATE TEMP TABLE bench_in (product_id INTEGER, aggregate_id INTEGER, qty NUMERIC,"
                        " in_stock INTEGER)")
            cur.executemany("INSERT INTO bench_in VALUES (%s, %s, %s, %s)", rows)
        cur.execute(merge, [False, now, now])
        if connection.vendor != "postgresql":
            cur.execute("DROP TABLE bench_in")


def child(db: str, n_skus: int) -> None:
    with database(db) as url:
        setup_django(url)
        from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus
        from mcom.service_bus import worker
        from mcom.service_bus.models import LoggedMessage

        skus = [f"SKU-{i:07d}" for i in range(n_skus)]
        Product.objects.bulk_create([Product(sku=s, name=s) for s in skus], batch_size=5000)
        agg = StockAggregate.objects.create(code="EU")
        ids = dict(Product.objects.values_list("sku", "id"))
        messages = store_messages(skus, "2026-01-01 10:00:00", 1)
        rss_before = peak_rss_mb()

        t = time.perf_counter()
        done = worker.run_until_idle(max_seconds=3600)
        ours = time.perf_counter() - t
        assert done == messages, (done, messages)
        assert LoggedMessage.objects.filter(status=LoggedMessage.COMPLETE).count() == messages
        assert StockItem.objects.count() == n_skus
        assert StockStatus.objects.count() == n_skus

        messages = store_messages(skus, "2026-01-01 11:00:00", 7)  # every quantity changes
        t = time.perf_counter()
        worker.run_until_idle(max_seconds=3600)
        ours_update = time.perf_counter() - t
        rss_after = peak_rss_mb()

        messages = store_messages(skus, "2026-01-01 12:00:00", 3)
        tracemalloc.start()
        worker.run_until_idle(max_seconds=3600)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        rows = [(ids[s], agg.pk, str((i + 1) % 50), (i + 1) % 50 > 0) for i, s in enumerate(skus)]
        empty_stock()
        t = time.perf_counter()
        raw_upsert(rows)
        base = time.perf_counter() - t
        rows = [(ids[s], agg.pk, str((i + 7) % 50), (i + 7) % 50 > 0) for i, s in enumerate(skus)]
        t = time.perf_counter()
        raw_upsert(rows)
        base_update = time.perf_counter() - t

    print(f"{n_skus:,} SKUs as {messages} FULL messages of ≤ {PER_MESSAGE:,} ({db})")
    print(f"  insert  connector (stored → reindexed): {ours:6.2f} s  {n_skus / ours:>9,.0f} rows/s")
    print(f"          baseline raw bulk upsert:       {base:6.2f} s  {n_skus / base:>9,.0f} rows/s"
          f"   ratio {base / ours:.2f}")
    print(f"  update  connector (all rows changed):   {ours_update:6.2f} s  {n_skus / ours_update:>9,.0f} rows/s")
    print(f"          baseline raw bulk upsert:       {base_update:6.2f} s  {n_skus / base_update:>9,.0f} rows/s"
          f"   ratio {base_update / ours_update:.2f}")
    print("  (the connector also resolves SKUs, checks staleness, writes cataloginventory_stock_status and the\n"
          "   outcome report; the baseline writes the stock items only, from prepared rows)")
    print(f"  memory  peak RSS {rss_after:.0f} MiB (before applying: {rss_before:.0f} MiB); "
          f"tracemalloc peak while applying {messages} messages: {traced_peak / 2**20:.1f} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.db, args.skus)
        return 0
    worst = 0
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        rc = subprocess.call([sys.executable, __file__, "--child", "--db", db, "--skus", str(args.skus)])
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
