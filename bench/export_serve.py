"""Benchmark: order export through ``mcom serve`` itself (web + 1 worker child, defaults), beside a
bare concurrent httpx client posting the same payloads to the same sandbox.

    .venv/bin/python bench/export_serve.py [--orders 2000] [--db sqlite|postgres] [--pg-url URL]
        [--latency-ms 0] [--rounds 3]

Setup (not timed), from bench/order_export.py: a throw-away instance root and database, the sandbox
OMS in a subprocess, the bench store; per round N authorized pending orders inserted set-based (4 OMS
lines each) while no server runs.

Measured per round, baseline and mcom alternating (B M, M B, …):

- **mcom**: ``mcom serve --port P`` is started as shipped (1 web process, 1 worker child with its
  inbound/outbound/cron lanes, ``[queue] send_concurrency`` default); its cron lane runs
  ``sales.export_orders`` (map, enqueue, wake the outbound lane), the outbound lane sends and marks
  the orders ``exported``. Time: from the first start of the export job in this server
  (``CronJobState.last_started_at``, polled every 20 ms) to the last ``processed_at`` of the orders'
  create messages, once every order is ``exported``; the process start-up (spawn → job start) is
  printed beside it, not counted.
- **baseline**: ``order_export.baseline``: the same create payloads (ids prefixed so that the
  sandbox stores them) POSTed by one keep-alive ``httpx.Client`` from as many threads as the
  worker's ``send_concurrency``.

Prints orders/s of each round and the median ratio mcom/baseline (aim ≥ 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import order_export as oe  # noqa: E402


def _ts(value: datetime | None) -> float:
    return float(value.timestamp()) if value is not None else float("nan")


def mcom_serve(root: Path, round_no: int, timeout: float) -> tuple[float, float]:
    """(seconds from the export job's first start to the last order sent, start-up seconds)."""
    from django.db import connections
    from django.db.models import Max

    from mcom.commerce.models import Order
    from mcom.service_bus import methods
    from mcom.service_bus.models import CronJobState, LoggedMessage

    connections.close_all()
    port = oe.free_port()
    log = open(root / "var" / "log" / f"bench-serve-{round_no}.out", "ab")  # noqa: SIM115 - closed below
    spawned = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "mcom.cli.main", "serve", "--port", str(port)], cwd=str(root),
                            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    job_started: float | None = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"mcom serve exited ({proc.returncode}); see {log.name}")
            if job_started is None:
                at = CronJobState.objects.filter(name="sales.export_orders").values_list("last_started_at", flat=True)
                first = next(iter(at), None)
                if first is not None and _ts(first) >= spawned:
                    job_started = _ts(first)
            elif not Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).exists():
                break
            if time.monotonic() > deadline:
                left = Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).count()
                raise SystemExit(f"{left} orders not exported within {timeout:g} s; see {log.name}")
            time.sleep(0.02)
        last = LoggedMessage.objects.filter(topic=methods.ORDER_CREATE).aggregate(m=Max("processed_at"))["m"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        connections.close_all()
    return _ts(last) - job_started, job_started - spawned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--orders", type=int, default=2_000, help="orders per round")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--latency-ms", type=int, default=0, help="OMS latency injected by the sandbox")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="per mcom round, seconds")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("MCOM_")]:
        del os.environ[key]  # the instance is the bench's, defaults untouched

    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mcom-bench-export-serve-") as tmp:
        root = Path(tmp)
        os.environ["MCOM_ROOT"] = str(root)
        sandbox, sandbox_url = oe.start_sandbox(root)
        admin = None
        if args.db == "postgres":
            db_url, admin = oe.create_pg_database(args.pg_url)
        else:
            db_url = "sqlite:///var/mcom.sqlite3"
        try:
            oe.configure(root, db_url, sandbox_url)
            from mcom import envconfig

            concurrency = envconfig.current().queue.send_concurrency
            oe.set_latency(sandbox_url, args.latency_ms)
            oe.make_store()
            print(f"{args.orders} orders per round (4 OMS lines each) on {args.db}, mcom serve defaults "
                  f"(send_concurrency {concurrency}), OMS latency {args.latency_ms} ms, {args.rounds} rounds", flush=True)
            for r in range(args.rounds):
                oe.make_orders(args.orders)
                payloads = oe.prepared_payloads(f"B{r}-")
                if r % 2 == 0:
                    base = oe.baseline(sandbox_url, payloads, concurrency)
                    real, startup = mcom_serve(root, r, args.timeout)
                else:
                    real, startup = mcom_serve(root, r, args.timeout)
                    base = oe.baseline(sandbox_url, payloads, concurrency)
                base_rate, real_rate = args.orders / base, args.orders / real
                ratios.append(real_rate / base_rate)
                print(f"round {r + 1}: baseline (bare httpx, {concurrency} threads) {base_rate:7.0f} orders/s   "
                      f"mcom serve {real_rate:7.0f} orders/s ({real:.2f} s; start-up {startup:.2f} s not counted)   "
                      f"ratio {ratios[-1]:.2f}", flush=True)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)
            if admin is not None:
                oe.drop_pg_database(admin, db_url)
    ratios.sort()
    print(f"median ratio mcom serve/baseline: {ratios[len(ratios) // 2]:.2f}  (aim >= 0.8)")


if __name__ == "__main__":
    main()
