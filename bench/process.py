"""Processing benchmark: inbound messages per second the worker drains (claim, per-entity order,
handler + status update in one transaction) for a no-op handler, beside a baseline measured in
the same run on the same rows: a raw loop that SELECTs a batch of new rows and marks each one
complete in its own transaction (no claim, no ordering, no lease).

    python bench/process.py --db sqlite|postgres --n 20000 [--entities 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def fill(n: int, entities: int) -> None:
    from django.utils import timezone

    from mcom.service_bus.models import LoggedMessage

    LoggedMessage.objects.all().delete()
    now = timezone.now()
    rows = []
    for i in range(n):
        mid = str(uuid.uuid4())
        params = {"order": {"id": f"{i % entities:09d}", "status": "COMPLETE"}}
        payload = json.dumps({"jsonrpc": "2.0", "id": mid, "method": common.METHOD, "params": params})
        rows.append(LoggedMessage(direction="in", topic=common.METHOD, message_id=mid, entity_key=f"order:{i % entities:09d}",
                                  payload=payload, status="new", next_attempt_at=now, created_at=now, updated_at=now))
    LoggedMessage.objects.bulk_create(rows, batch_size=2000)
    from django.db import connection

    if connection.vendor == "postgresql":  # drop the dead tuples of the previous run, fresh statistics
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE mcom_logged_messages_queue")


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
    assert LoggedMessage.objects.filter(status="complete").count() == n, processed
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--entities", type=int, default=5000, help="distinct entity keys (orders)")
    args = ap.parse_args()

    inst = common.make_instance(args.db)
    os.environ.update(inst.env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import django

    django.setup()
    fill(args.n, args.entities)
    base = baseline(args.n)
    fill(args.n, args.entities)
    rate = mcom_worker(args.n)
    fill(args.n, 1)
    hot = mcom_worker(args.n)
    print(f"\nprocess: db={args.db} n={args.n} entities={args.entities}")
    print(common.table(
        ["run", "msgs/s"],
        [
            ["baseline (SELECT batch + UPDATE/COMMIT per row)", f"{base:,.0f}"],
            [f"mcom worker, no-op handler, {args.entities} entities", f"{rate:,.0f}"],
            ["mcom worker, no-op handler, 1 entity (strict order)", f"{hot:,.0f}"],
        ],
    ))
    print(f"ratio mcom/baseline: {rate / base:.2f}  (one entity: {hot / base:.2f})")


if __name__ == "__main__":
    main()
