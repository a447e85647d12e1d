"""Load for the database-restart fault test (run as ``python -m faults.pg_loader N``): stores N
counted inbound messages one by one and prints ``ack <id>`` for each one whose transaction
committed (an acknowledged message). A failed store (the database is restarting) is retried."""

from __future__ import annotations

import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    django.setup()
    from django.db import DatabaseError, connections

    from mcom.service_bus import inbox
    from service_bus import bus_handlers  # tests/ is on PYTHONPATH, as for MCOM_TEST_HANDLERS

    total = int(sys.argv[1])
    bus_handlers.create_effect_table()
    n = 0
    failures = 0
    while n < total:
        try:
            msg = inbox.store_inbound(bus_handlers.COUNT, {"entity": f"e{n % 8}", "n": n})
        except DatabaseError:
            failures += 1
            connections.close_all()
            time.sleep(0.1)
            continue
        print(f"ack {msg.pk}", flush=True)
        n += 1
        time.sleep(0.002)
    print(f"done {n} stored, {failures} failed tries", flush=True)


if __name__ == "__main__":
    main()
