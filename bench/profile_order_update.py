"""Order-update handler profile: inbound ``order_management.updated`` messages per second through the
real worker and the real sales handler, queries per message, and a cProfile of the run.

    python bench/profile_order_update.py --db sqlite|postgres [--orders 1000] [--rounds 2] [--items 3]
        [--queries] [--profile out.prof]

A fresh instance (``common.make_instance``; PostgreSQL database ``BENCH_PG_DB``) gets ``--orders``
exported orders of ``--items`` items (quantities 1, 2, 1, …, so more OMS lines than items), then
``--rounds`` updates per order (``LOGISTICS`` with every line ``ALLOCATED``, then ``COMPLETE`` with every
line ``SHIPPED``, later ``status_date`` each round; a third round repeats the second: idempotent),
stored through the inbound log and drained by ``worker.process_inbound()``. Prints msgs/s and the CPU
time of this process per message (steadier than wall time on a shared machine; PostgreSQL's own work is
not in it), and with
``--queries`` the queries of the whole drain and of one handler call. Run the same script against another
tree with ``PYTHONPATH=<tree>/src`` to compare.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

UPDATES = [("LOGISTICS", "ALLOCATED"), ("COMPLETE", "SHIPPED"), ("COMPLETE", "SHIPPED")]


def make_orders(n: int, items: int) -> dict[str, list[str]]:
    """``n`` exported orders; returns increment id → its OMS line ids."""
    from mcom.commerce.models import Order, OrderItem, Product, Store

    store = Store.objects.create(code="main", name="Main", currency="EUR", country="DE")
    products = Product.objects.bulk_create(
        [Product(sku=f"SKU-{k}", name=f"Product {k}", price=Decimal("10.00")) for k in range(items)])
    orders = Order.objects.bulk_create([
        Order(increment_id=f"{i:09d}", store=store, customer_email="ada@example.com", currency="EUR",
              oms_export_state=Order.EXPORT_EXPORTED, grand_total=Decimal("40.00"))
        for i in range(n)
    ], batch_size=500)
    rows = []
    for order in orders:
        for k, product in enumerate(products):
            qty = Decimal(2 if k % 2 else 1)
            rows.append(OrderItem(order=order, product=product, sku=product.sku, name=product.name, qty_ordered=qty,
                                  price=Decimal("10.00"), price_incl_tax=Decimal("11.90"), tax_percent=Decimal(19),
                                  tax_amount=Decimal("1.90") * qty, row_total=Decimal("10.00") * qty,
                                  row_total_incl_tax=Decimal("11.90") * qty))
    OrderItem.objects.bulk_create(rows, batch_size=1000)
    lines: dict[str, list[str]] = {o.increment_id: [] for o in orders}
    by_order = {o.pk: o.increment_id for o in orders}
    for item in OrderItem.objects.order_by("id"):
        units = int(item.qty_ordered)
        ids = [str(item.pk)] if units == 1 else [f"{item.pk}-{u}" for u in range(1, units + 1)]
        lines[by_order[item.order_id]] += ids
    return lines


def params(order_id: str, line_ids: list[str], round_: int) -> dict[str, Any]:
    status, line_status = UPDATES[round_]
    date = f"2026-05-0{min(round_, 1) + 1} 10:00:00"
    return {"order": {
        "id": order_id, "status": status, "status_reason": "", "status_date": date,
        "lines": [{"id": lid, "line_number": k + 1, "sku": "SKU", "status": line_status, "status_reason": "",
                   "quantity": 1} for k, lid in enumerate(line_ids)]
                 + [{"id": "SHIPPING", "line_number": len(line_ids) + 1, "status": line_status}],
    }}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2, choices=[1, 2, 3])
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--queries", action="store_true", help="count queries (DEBUG cursor; slower)")
    ap.add_argument("--show-drain", type=int, default=0, help="print the first queries of the drain")
    ap.add_argument("--profile", help="write cProfile stats of the drain here")
    args = ap.parse_args()

    inst = common.make_instance(args.db)
    os.environ.update(inst.env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mcom.commerce.models import Order
    from mcom.sales import lifecycle, messages
    from mcom.service_bus import inbox, methods, worker

    lines = make_orders(args.orders + 1, args.items)
    spare = f"{args.orders:09d}"  # one order kept out of the drain, for the handler-only query count
    for r in range(args.rounds):
        for oid, ids in lines.items():
            if oid != spare:
                inbox.store_inbound(methods.ORDER_UPDATED, params(oid, ids, r))
    n = args.orders * args.rounds
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")

    prof = cProfile.Profile() if args.profile else None
    ctx = CaptureQueriesContext(connection) if args.queries else None
    if ctx is not None:
        connection.queries_log = deque(maxlen=10 * n + 1000)  # the whole drain (Django keeps 9000)
        ctx.__enter__()
    t0, c0 = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    processed = worker.process_inbound()
    if prof is not None:
        prof.disable()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if ctx is not None:
        ctx.__exit__(None, None, None)
    assert processed == n, (processed, n)
    assert Order.objects.filter(oms_status="COMPLETE" if args.rounds > 1 else "LOGISTICS").count() == args.orders
    print(f"\norder updates: db={args.db} orders={args.orders} rounds={args.rounds} items={args.items} "
          f"lines/order={len(lines[spare])}")
    print(f"{n} messages in {elapsed:.2f}s: {n / elapsed:,.0f} msgs/s; "
          f"this process's CPU {cpu / n * 1e6:,.0f} µs/message ({n / cpu:,.0f} msgs per CPU second)")
    if ctx is not None:
        print(f"queries in the drain: {len(ctx.captured_queries)} ({len(ctx.captured_queries) / n:.1f}/message)")
        for q in ctx.captured_queries[:args.show_drain]:
            print("   ", q["sql"][:160])
        for r in range(args.rounds):
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as one:
                lifecycle.apply_order_update(messages.parse_order_update(params(spare, lines[spare], r)))
            print(f"handler alone, round {r + 1} ({UPDATES[r][0]}): {len(one.captured_queries)} queries")
            for q in one.captured_queries:
                print("   ", q["sql"][:160])
    if prof is not None:
        prof.dump_stats(args.profile)
        print(f"profile: {args.profile}")


if __name__ == "__main__":
    main()
