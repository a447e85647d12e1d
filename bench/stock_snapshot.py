"""Benchmark: 100,000 SKUs arriving as 10 FULL stock messages of 10,000 — stored to reindexed.

    .venv/bin/python bench/stock_snapshot.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/stock_snapshot.py --db postgresql --skus 50000

Per database, in a child process with a fresh database:

1. 100,000 products and one aggregate; 10 FULL snapshot messages (same ``created_on``) stored in
   the message log with ``inbox.store_inbound`` (not timed);
2. **connector**: ``worker.run_until_idle()`` — parse, stale/unknown checks, bulk upsert into
   ``cataloginventory_stock_item`` and reindex of ``cataloginventory_stock_status``, message
   outcomes written (timed);
3. **baseline**, same run, same database, emptied stock tables, interleaved with the connector
   (B M B M B M, ``--rounds 3``): the same work without the bookkeeping — prepared ``(sku, qty)``
   rows, each SKU resolved to its product, both tables upserted (``cataloginventory_stock_item``
   and ``cataloginventory_stock_status``), the fastest way the database offers (PostgreSQL: COPY
   → temp table → INSERT … SELECT … JOIN … ON CONFLICT; SQLite: one JSON array through
   ``json_each`` into a temp table, the same statements), one transaction per 10,000 rows;
4. both sides again with every quantity changed (update path), timed;
5. peak memory: process peak RSS, and tracemalloc's peak of Python allocations while applying.

Prints rows/s per round and the median ratio connector ÷ baseline (1.0 = as fast as the raw path).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import fresh_database  # noqa: E402

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


def raw_apply(rows: list[tuple[str, str]], aggregate_pk: int) -> None:
    """The baseline: the same work as the connector's apply without its bookkeeping — resolve each
    SKU to its product, upsert ``cataloginventory_stock_item`` and ``cataloginventory_stock_status``
    from prepared ``(sku, qty)`` rows, the fastest way the database offers (PostgreSQL: COPY → temp
    table → two ``INSERT … SELECT … JOIN product ON sku … ON CONFLICT``; SQLite: ``json_each`` of
    one JSON array into a temp table, the same two statements), one transaction per 10,000 rows like the messages.
    No staleness condition, no coverage count, no outcome report, no message log."""
    from django.db import connection, transaction
    from django.utils import timezone

    from mcom.commerce.models import Product

    product = connection.ops.quote_name(Product._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    pg = connection.vendor == "postgresql"
    item = (
        "INSERT INTO cataloginventory_stock_item (product_id, aggregate_id, qty, is_in_stock, unlimited, snapshot_at, "
        f"updated_at) SELECT p.id, %s, b.qty, b.qty > 0, %s, %s, %s FROM bench_in b JOIN {product} p ON p.sku = b.sku "
        "WHERE true ON CONFLICT (product_id, aggregate_id) DO UPDATE SET qty = excluded.qty, "
        "is_in_stock = excluded.is_in_stock, snapshot_at = excluded.snapshot_at, updated_at = excluded.updated_at"
    )
    status = (
        "INSERT INTO cataloginventory_stock_status (product_id, aggregate_id, qty, stock_status) "
        f"SELECT p.id, %s, b.qty, b.qty > 0 FROM bench_in b JOIN {product} p ON p.sku = b.sku WHERE true "
        "ON CONFLICT (product_id, aggregate_id) DO UPDATE SET qty = excluded.qty, stock_status = excluded.stock_status"
    )
    for start in range(0, len(rows), PER_MESSAGE):
        part = rows[start:start + PER_MESSAGE]
        with transaction.atomic(), connection.cursor() as cur:
            if pg:
                cur.execute("CREATE TEMP TABLE bench_in (sku varchar(64), qty numeric(12,4)) ON COMMIT DROP")
                with cur.cursor.copy("COPY bench_in FROM STDIN") as copy:
                    for row in part:
                        copy.write_row(row)
            else:  # one JSON array through json_each: ~2x faster than executemany of 10,000 rows
                cur.execute("CREATE TEMP TABLE bench_in (sku TEXT, qty NUMERIC)")
                cur.execute("INSERT INTO bench_in SELECT j.value ->> 0, CAST(j.value ->> 1 AS NUMERIC) FROM json_each(%s) j",
                            [json.dumps(part)])
            cur.execute(item, [aggregate_pk, False, now, now])
            cur.execute(status, [aggregate_pk])
            if not pg:
                cur.execute("DROP TABLE bench_in")


def child(db: str, n_skus: int, rounds: int) -> None:
    with database(db) as url:
        setup_django(url)
        from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus
        from mcom.service_bus import worker
        from mcom.service_bus.models import LoggedMessage

        skus = [f"SKU-{i:07d}" for i in range(n_skus)]
        Product.objects.bulk_create([Product(sku=s, name=s) for s in skus], batch_size=5000)
        agg = StockAggregate.objects.create(code="EU")
        rss_before = peak_rss_mb()
        updates: dict[str, list[float]] = {"B": [], "M": []}
        hour = [0]

        def connector() -> float:
            empty_stock()
            LoggedMessage.objects.all().delete()
            hour[0] += 1
            messages = store_messages(skus, f"2026-01-01 {hour[0]:02d}:00:00", 1)
            t = time.perf_counter()
            done = worker.run_until_idle(max_seconds=3600)
            ours = time.perf_counter() - t
            assert done == messages, (done, messages)
            assert LoggedMessage.objects.filter(status=LoggedMessage.COMPLETE).count() == messages
            assert StockItem.objects.count() == n_skus
            assert StockStatus.objects.count() == n_skus
            hour[0] += 1
            store_messages(skus, f"2026-01-01 {hour[0]:02d}:00:00", 7)  # every quantity changes
            t = time.perf_counter()
            worker.run_until_idle(max_seconds=3600)
            updates["M"].append(n_skus / (time.perf_counter() - t))
            return n_skus / ours

        def raw() -> float:
            empty_stock()
            rows = [(s, str((i + 1) % 50)) for i, s in enumerate(skus)]
            t = time.perf_counter()
            raw_apply(rows, agg.pk)
            base = time.perf_counter() - t
            assert StockStatus.objects.count() == n_skus
            rows = [(s, str((i + 7) % 50)) for i, s in enumerate(skus)]
            t = time.perf_counter()
            raw_apply(rows, agg.pk)
            updates["B"].append(n_skus / (time.perf_counter() - t))
            return n_skus / base

        res = common.interleaved(rounds, raw, {"connector, new rows": connector}, unit="rows/s",
                                 baseline_name="raw lookup + 2-table upsert")
        upd = common.Rounds("rows/s", res.baseline_name, ["connector, all rows changed"],
                            [(common.Measure(b), {"connector, all rows changed": common.Measure(m)})
                             for b, m in zip(updates["B"], updates["M"], strict=True)])
        rss_after = peak_rss_mb()

        hour[0] += 1
        messages = store_messages(skus, f"2026-01-01 {hour[0]:02d}:00:00", 3)
        tracemalloc.start()
        worker.run_until_idle(max_seconds=3600)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"\n{n_skus:,} SKUs as {messages} FULL messages of ≤ {PER_MESSAGE:,} ({db}), {rounds} interleaved rounds")
    print("insert (empty stock tables):")
    print(res.report())
    print("update (every quantity changed):")
    print(upd.report())
    print("  (both sides resolve SKUs and write cataloginventory_stock_item + cataloginventory_stock_status; the\n"
          "   connector also reads the messages from the log, checks staleness per row, counts FULL coverage and\n"
          "   records the outcome)")
    print(f"  memory  peak RSS {rss_after:.0f} MiB (before applying: {rss_before:.0f} MiB); "
          f"tracemalloc peak while applying {messages} messages: {traced_peak / 2**20:.1f} MiB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--skus", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.db, args.skus, args.rounds)
        return 0
    worst = 0
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        rc = subprocess.call([sys.executable, __file__, "--child", "--db", db, "--skus", str(args.skus),
                              "--rounds", str(args.rounds)])
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main())
