"""Benchmark: order export through ``mcom serve`` itself (web + 1 worker child, defaults), beside a
bare concurrent httpx client posting the same payloads to the same sandbox.

    .venv/bin/python bench/export_serve.py [--orders 2000] [--db sqlite|postgres] [--pg-url URL]
        [--latency-ms 0] [--rounds 3] [--workers 1]

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
  printed beside it, not counted. ``--workers N`` starts ``mcom serve --workers N``: N worker
  children, each with all lanes; one of them runs the export pass (the job lock), all of them send,
  so the export pass and the sending share no interpreter lock (the baseline then keeps
  N × ``send_concurrency`` requests in flight, as many as the workers together).
- **baseline**: ``order_export.baseline``: the same create payloads (ids prefixed so that the
  sandbox stores them) POSTed by one keep-alive ``httpx.Client`` from as many threads as the
  workers' ``send_concurrency`` together.

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
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import order_export as oe  # noqa: E402


def _ts(value: datetime | None) -> float:
    return float(value.timestamp()) if value is not None else float("nan")


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def cpu_seconds(pids: list[int]) -> dict[str, float]:
    """utime + stime of each process (Linux /proc), keyed by a short name of its command line."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = ("worker" if " worker" in cmd else "sandbox" if "sandbox" in cmd else
                "serve" if " serve" in cmd else "web" if "uvicorn" in cmd or "multiprocessing" in cmd else f"pid{p}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass
class Phases:
    seconds: float  # export job's first start → last create message processed
    startup: float  # spawn → export job's first start
    export_pass: float  # export job's first start → last create message enqueued
    cpu: dict[str, float]  # CPU seconds per process during ``seconds``


def mcom_serve(root: Path, round_no: int, timeout: float, sandbox_pid: int, workers: int = 1) -> Phases:
    """Start ``mcom serve``, wait until every order is exported, and time it (see the module doc)."""
    from django.db import connections
    from django.db.models import Max

    from mcom.commerce.models import Order
    from mcom.service_bus import methods
    from mcom.service_bus.models import CronJobState, LoggedMessage

    connections.close_all()
    port = oe.free_port()
    log = open(root / "var" / "log" / f"bench-serve-{round_no}.out", "ab")  # noqa: SIM115 - closed below
    spawned = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "mcom.cli.main", "serve", "--port", str(port),
                             "--workers", str(workers)], cwd=str(root),
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
                    cpu0 = cpu_seconds([*_descendants(proc.pid), sandbox_pid])
            elif not Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).exists():
                break
            if time.monotonic() > deadline:
                left = Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).count()
                raise SystemExit(f"{left} orders not exported within {timeout:g} s; see {log.name}")
            time.sleep(0.02)
        cpu1 = cpu_seconds([*_descendants(proc.pid), sandbox_pid])
        agg = LoggedMessage.objects.filter(topic=methods.ORDER_CREATE).aggregate(p=Max("processed_at"),
                                                                                 c=Max("created_at"))
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
    assert job_started is not None
    return Phases(seconds=_ts(agg["p"]) - job_started, startup=job_started - spawned,
                  export_pass=_ts(agg["c"]) - job_started, cpu={k: v - cpu0.get(k, 0.0) for k, v in cpu1.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--orders", type=int, default=2_000, help="orders per round")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--latency-ms", type=int, default=0, help="OMS latency injected by the sandbox")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="per mcom round, seconds")
    parser.add_argument("--workers", type=int, default=1, help="mcom serve --workers N (worker children)")
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

            concurrency = envconfig.current().queue.send_concurrency * args.workers
            oe.set_latency(sandbox_url, args.latency_ms)
            oe.make_store()
            print(f"{args.orders} orders per round (4 OMS lines each) on {args.db}, mcom serve defaults, "
                  f"{args.workers} worker(s) (requests in flight {concurrency}), OMS latency {args.latency_ms} ms, {args.rounds} rounds", flush=True)
            for r in range(args.rounds):
                oe.make_orders(args.orders)
                payloads = oe.prepared_payloads(f"B{r}-")
                if r % 2 == 0:
                    base = oe.baseline(sandbox_url, payloads, concurrency)
                    ph = mcom_serve(root, r, args.timeout, sandbox.pid, args.workers)
                else:
                    ph = mcom_serve(root, r, args.timeout, sandbox.pid, args.workers)
                    base = oe.baseline(sandbox_url, payloads, concurrency)
                base_rate, real_rate = args.orders / base, args.orders / ph.seconds
                ratios.append(real_rate / base_rate)
                cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(ph.cpu.items()) if v >= 0.05)
                print(f"round {r + 1}: baseline (bare httpx, {concurrency} threads) {base_rate:7.0f} orders/s   "
                      f"mcom serve {real_rate:7.0f} orders/s   ratio {ratios[-1]:.2f}\n"
                      f"  mcom {ph.seconds:.2f} s (export pass enqueued its last order at {ph.export_pass:.2f} s; "
                      f"start-up {ph.startup:.2f} s not counted); CPU s meanwhile: {cpu}", flush=True)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)
            if admin is not None:
                oe.drop_pg_database(admin, db_url)
    ratios.sort()
    print(f"median ratio mcom serve/baseline: {ratios[len(ratios) // 2]:.2f}  (aim >= 0.8)")


if __name__ == "__main__":
    main()
