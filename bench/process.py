"""Processing benchmark: inbound messages per second the worker drains (claim, per-entity order,
handler + status update in one transaction), beside a baseline measured in the same run and
interleaved with it (B M… B M… B M…, ``--rounds 3``): a raw loop that SELECTs a batch of new rows
and marks each one complete in its own transaction (no claim, no ordering, no lease, no handler).

Variants per round: the no-op handler with N/entities messages per entity, the no-op handler with
one entity (strict order all the way), and the real order-update handler
(``magento.sales.order_management.updated``, :mod:`mcom.sales.handlers`) on ``--orders`` orders
created beforehand (status changes with increasing ``status_date``: lock the order, load its
items, map the status, save, one history row).

    python bench/process.py --db sqlite|postgres --n 20000 [--entities 5000] [--orders 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

ORDER_UPDATED = "magento.sales.order_management.updated"
START = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ("APPROVED", "LOGISTICS", "LOGISTICSCOMPLETE", "COMPLETE")


def _vacuum() -> None:
    from django.db import connection

    if connection.vendor == "postgresql":  # drop the dead tuples of the previous run, fresh statistics
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE mcom_logged_messages_queue")


def _insert(rows: list[object]) -> None:
    from mcom.service_bus.models import LoggedMessage

    LoggedMessage.objects.all().delete()
    LoggedMessage.objects.bulk_create(rows, batch_size=2000)  # type: ignore[arg-type]
    _vacuum()


def fill(n: int, entities: int) -> None:
    from django.utils import timezone

    from mcom.service_bus.models import LoggedMessage

    now = timezone.now()
    rows: list[object] = []
    for i in range(n):
        mid = str(uuid.uuid4())
        params = {"order": {"id": f"{i % entities:09d}", "status": "COMPLETE"}}
        payload = json.dumps({"jsonrpc": "2.0", "id": mid, "method": common.METHOD, "params": params})
        rows.append(LoggedMessage(direction="in", topic=common.METHOD, message_id=mid, entity_key=f"order:{i % entities:09d}",
                                  payload=payload, status="new", next_attempt_at=now, created_at=now, updated_at=now))
    _insert(rows)


def make_orders(count: int) -> list[str]:
    """``count`` orders (2 lines each) to be updated; returns their increment ids (not timed)."""
    from django.db import transaction

    from mcom.commerce.models import Product, Store
    from mcom.commerce.schemas import OrderIn
    from mcom.commerce.services import build_order, reserve_increment_ids, save_planned_orders

    store = Store.objects.create(code="bench", name="Bench store", locale="en_GB", currency="EUR", country="DE",
                                 base_url="https://shop.example")
    Product.objects.bulk_create([Product(sku=f"SKU-{i:03d}", name=f"Product {i}", price=Decimal(10 + i),
                                         url_key=f"product-{i}") for i in range(50)])
    products = {p.sku: p for p in Product.objects.all()}
    ids = reserve_increment_ids(count)
    for start in range(0, count, 1000):
        planned = []
        for n in range(start, min(start + 1000, count)):
            data = OrderIn.model_validate({
                "store": "bench", "customer_email": f"c{n}@example.com",
                "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Analytical Way",
                                    "city": "Berlin", "postcode": "10115", "country_id": "DE"},
                "lines": [{"sku": f"SKU-{n % 50:03d}", "qty": 1, "tax_percent": "19"},
                          {"sku": f"SKU-{(n + 7) % 50:03d}", "qty": 2, "tax_percent": "19"}],
                "shipping": {"method": "flatrate_flatrate", "amount": "4.95", "tax_percent": "19"},
            })
            planned.append(build_order(data=data, store=store, products=products, increment_id=ids[n]))
        with transaction.atomic():
            save_planned_orders(planned)
    return list(ids)


def fill_updates(n: int, orders: list[str], round_no: int) -> None:
    """``n`` order updates over ``orders``, each a status change dated after the previous one."""
    from django.utils import timezone

    from mcom.service_bus.models import LoggedMessage
    from mcom.service_bus.registry import entity_key_for, inbound_route

    route = inbound_route(ORDER_UPDATED)
    assert route is not None, "the sales module is not enabled"
    now = timezone.now()
    rows: list[object] = []
    for i in range(n):
        mid = str(uuid.uuid4())
        k = round_no * n + i  # later rounds carry later dates and other statuses
        params = {"order": {"id": orders[i % len(orders)], "status": STATUSES[(k // len(orders)) % len(STATUSES)],
                            "status_reason": ""}}
        params["order"]["status_date"] = (START + timedelta(seconds=k)).isoformat()
        payload = json.dumps({"jsonrpc": "2.0", "id": mid, "method": ORDER_UPDATED, "params": params})
        rows.append(LoggedMessage(direction="in", topic=ORDER_UPDATED, message_id=mid,
                                  entity_key=entity_key_for(route, params, mid), payload=payload, status="new",
                                  next_attempt_at=now, created_at=now, updated_at=now))
    _insert(rows)


def baseline(n: int) -> float:
    """Raw SELECT + per-row UPDATE/COMMIT loop over the same rows (Django's connection, same driver)."""
    from django.db import connection, transaction
    from django.utils import timezone

    done = 0
    t0 = time.perf_counter()
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT id, payload FROM mcom_logged_messages_queue WHERE status = 'new' ORDER BY id LIMIT 200")
            batch = cur.fetchall()
        if not batch:
            break
        for row_id, payload in batch:
            json.loads(payload)
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    "UPDATE mcom_logged_messages_queue SET status = 'complete', updated_at = %s WHERE id = %s",
                    [timezone.now(), row_id],
                )
            done += 1
    elapsed = time.perf_counter() - t0
    assert done == n, (done, n)
    return n / elapsed


def mcom_worker(n: int) -> float:
    from mcom.service_bus import worker
    from mcom.service_bus.models import LoggedMessage

    t0 = time.perf_counter()
    processed = worker.process_inbound()
    elapsed = time.perf_counter() - t0
    assert processed == n, processed
    complete = LoggedMessage.objects.filter(status="complete").count()
    assert complete == n, (complete, n, list(LoggedMessage.objects.exclude(status="complete")
                                             .values_list("status", "last_error")[:3]))
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--entities", type=int, default=5000, help="distinct entity keys (orders)")
    ap.add_argument("--orders", type=int, default=2000, help="orders updated by the real-handler variant")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    inst = common.make_instance(args.db)
    os.environ.update(inst.env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)  # the handler logs one INFO line per status change
    orders = make_orders(args.orders)
    rounds = [0]

    def b() -> float:
        fill(args.n, args.entities)
        return baseline(args.n)

    def spread() -> float:
        fill(args.n, args.entities)
        return mcom_worker(args.n)

    def hot() -> float:
        fill(args.n, 1)
        return mcom_worker(args.n)

    def real() -> float:
        fill_updates(args.n, orders, rounds[0])
        rounds[0] += 1
        return mcom_worker(args.n)

    res = common.interleaved(args.rounds, b, {
        f"no-op handler, {args.entities} entities": spread,
        "no-op handler, 1 entity (strict order)": hot,
        f"order_management.updated, {args.orders} orders": real,
    }, baseline_name="baseline (SELECT batch + UPDATE/COMMIT per row)")
    print(f"\nprocess: db={args.db} n={args.n} entities={args.entities} orders={args.orders} rounds={args.rounds}")
    print(res.report())


if __name__ == "__main__":
    main()
