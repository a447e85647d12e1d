"""Benchmark: order export to the OMS through the real path, beside a bare-HTTP baseline.

    .venv/bin/python bench/order_export.py [--orders 2000] [--db sqlite|postgres] [--pg-url URL]
        [--concurrency 8] [--latency-ms 0] [--rounds 3]

Setup (not timed): a throw-away instance root, a fresh database (SQLite file, or a new PostgreSQL
database created on ``--pg-url``'s server and dropped afterwards), the sandbox OMS in a subprocess
(its own SQLite database; ``--latency-ms`` through its fault switch), and per round N authorized
pending orders inserted set-based (2 items, 3 units each + shipping = 4 OMS lines per order).

Measured per round, baseline and mcom alternating (B M, M B, B M, … so that load drift cancels):

- **baseline**: the same create payloads (mapped beforehand, order ids prefixed ``B<round>`` so the
  sandbox stores them instead of ignoring duplicates), POSTed by a bare ``httpx.Client`` (bearer token
  fetched once) to ``delegate/oms`` from ``--concurrency`` threads — the same number of requests in
  flight as the connector's sender.
- **mcom**: what ``mcom worker`` does, until every order is exported: its cron lane runs the export
  pass ``sales.export_orders`` (eligibility, mapping, plugins, ``outbox.enqueue``, state update, a
  commit per batch that wakes the sender) while its outbound lane sends (claim, concurrent signed
  JSON-RPC sends with OAuth, ``on_sent`` → order ``exported`` + history row), with ``[queue]
  send_concurrency = --concurrency``. ``--mode passes``: an export pass, then a send pass, in turn.

Prints orders/s of each round, and the median ratio mcom/baseline (aim ≥ 0.8).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402 - takes the old MCOM_BENCH_* names before any config is loaded

CLIENT_ID = "bench"
CLIENT_SECRET = "bench-client-secret"
BUS_SECRET = "bench-delivery-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = ("import logging; logging.disable(logging.INFO);"
            "from mcom.sandbox.server import run;"
            f"run('127.0.0.1', {port}, {str(root / 'sandbox.sqlite3')!r}, {CLIENT_ID!r}, {CLIENT_SECRET!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def create_pg_database(base_url: str) -> tuple[str, str]:
    """A fresh database on ``base_url``'s server: (its URL, its name)."""
    import psycopg

    name = f"mcom_bench_orders_{os.getpid()}"
    parts = urlsplit(base_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), admin


def drop_pg_database(admin: str, url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def configure(root: Path, db_url: str, sandbox_url: str) -> None:
    os.environ.update({
        "MCOM_ROOT": str(root),
        "DJANGO_SETTINGS_MODULE": "mcom.settings",
        "MCOM_DB__URL": db_url,
        "MCOM_SERVICE_BUS__URL": sandbox_url,
        "MCOM_SERVICE_BUS__OAUTH_SERVER_URL": sandbox_url,
        "MCOM_SERVICE_BUS__OAUTH_CLIENT_ID": CLIENT_ID,
        "MCOM_SERVICE_BUS__OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "MCOM_SERVICE_BUS__SECRET": BUS_SECRET,
        "MCOM_SERVICE_BUS__APPLICATION_BASE_URL": "http://127.0.0.1:9",
    })
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "var" / "log").mkdir(parents=True, exist_ok=True)
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    logging.disable(logging.WARNING)
    call_command("migrate", verbosity=0)


def make_store() -> None:
    """The bench store and its 50 products (not timed)."""
    from mcom.commerce import config
    from mcom.commerce.models import Product, Store

    Store.objects.create(code="bench", name="Bench store", locale="en_GB", currency="EUR", country="DE",
                         base_url="https://shop.example")
    config.set_value("mcom/general/sales_channel_id", "bench-channel", scope="store", scope_code="bench")
    Product.objects.bulk_create([
        Product(sku=f"SKU-{i:03d}", name=f"Product {i}", price=Decimal(10 + i), url_key=f"product-{i}")
        for i in range(50)
    ])


def make_orders(count: int) -> None:
    """``count`` more authorized pending orders, inserted set-based (not timed)."""
    from django.db import transaction

    from mcom.commerce.models import Product, Store
    from mcom.commerce.schemas import OrderIn
    from mcom.commerce.services import build_order, reserve_increment_ids, save_planned_orders

    store = Store.objects.get(code="bench")
    products = {p.sku: p for p in Product.objects.all()}
    ids = reserve_increment_ids(count)
    for start in range(0, count, 1000):
        planned = []
        for n in range(start, min(start + 1000, count)):
            data = OrderIn.model_validate({
                "store": "bench", "customer_email": f"c{n}@example.com", "customer_id": "" if n % 3 else f"c-{n}",
                "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Analytical Way",
                                    "city": "Berlin", "postcode": "10115", "country_id": "DE"},
                "lines": [{"sku": f"SKU-{n % 50:03d}", "qty": 1, "tax_percent": "19"},
                          {"sku": f"SKU-{(n + 7) % 50:03d}", "qty": 2, "tax_percent": "19", "discount_amount": "1.50"}],
                "shipping": {"method": "flatrate_flatrate", "amount": "4.95", "tax_percent": "19"},
                "custom_attributes": {"channel": "web"},
            })
            planned.append(build_order(data=data, store=store, products=products, increment_id=ids[n]))
        with transaction.atomic():
            save_planned_orders(planned)


def prepared_payloads(prefix: str) -> list[dict[str, Any]]:
    """The create params of every order not exported yet, mapped exactly as the export does (ids
    prefixed ``prefix``)."""
    from django.db.models import Prefetch

    from mcom.commerce.models import Order, OrderItem
    from mcom.sales import mappers, plugins

    pset = plugins.current()
    out = []
    qs = Order.objects.select_related("store").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("id")), "addresses")
    for order in qs.filter(oms_export_state=Order.EXPORT_NOT_EXPORTED).order_by("id").iterator(chunk_size=1000):
        spec = mappers.order_to_specification(order, items=list(order.items.all()),
                                              addresses=list(order.addresses.all()),
                                              sales_channel_id="bench-channel", plugins=pset)
        params = spec.to_params()
        params["order"]["id"] = prefix + params["order"]["id"]
        out.append(params)
    return out


def baseline(sandbox_url: str, payloads: list[dict[str, Any]], concurrency: int) -> float:
    """Seconds to POST every payload with one bare keep-alive httpx.Client from ``concurrency`` threads."""
    import json
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=sandbox_url, timeout=30.0, limits=limits) as client:
        token = client.post("oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                                 "client_secret": CLIENT_SECRET}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def post(params: dict[str, Any]) -> None:
            body = json.dumps({"jsonrpc": "2.0", "id": str(uuid.uuid4()),
                               "method": "magento.sales.order_management.create", "params": params},
                              separators=(",", ":"))
            response = client.post("delegate/oms", content=body, headers=headers)
            response.raise_for_status()
            if "error" in response.json():
                raise SystemExit(f"baseline: the sandbox refused an order: {response.text[:200]}")

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for _ in pool.map(post, payloads):
                pass
        return time.perf_counter() - started


def set_latency(sandbox_url: str, latency_ms: int) -> None:
    import httpx

    httpx.post(sandbox_url + "_sandbox/api/faults", json={"latency_ms": latency_ms}, timeout=10).raise_for_status()


def real_path(count: int) -> float:
    """Seconds until every order is exported by one export pass after another and a send pass
    after each (``--mode passes``: no overlap; what ``cron:run`` does)."""
    from mcom.sales import jobs
    from mcom.service_bus import worker

    started = time.perf_counter()
    export_s = send_s = 0.0
    while True:
        t = time.perf_counter()
        queued = jobs.export_orders()["queued"]
        export_s += time.perf_counter() - t
        t = time.perf_counter()
        sent = worker.send_outbound()
        send_s += time.perf_counter() - t
        if queued == 0 and sent == 0:
            break
    elapsed = time.perf_counter() - started
    print(f"    mcom: export pass {export_s:.2f} s, sending {send_s:.2f} s", flush=True)
    _check_exported()
    return elapsed


def lanes_path(count: int) -> float:
    """Seconds until every order is exported by ``mcom worker``'s lanes in this process (``--mode
    lanes``, the default): the cron lane runs the export pass while the outbound lane sends what it
    queued (woken by each committed batch)."""
    from django.db import connection
    from django.utils import timezone

    from mcom.commerce.models import Order
    from mcom.service_bus import lanes
    from mcom.service_bus.models import CronJobState

    CronJobState.objects.filter(name="sales.export_orders").update(next_run_at=timezone.now(), locked_until=None)
    started = time.perf_counter()
    lanes_worker = lanes.Worker(only=(lanes.OUTBOUND, lanes.CRON)).start()
    try:
        while Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).exists():
            connection.close()  # a fresh snapshot each look (and no lock held while the lanes write)
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        lanes_worker.stop()
    _check_exported()
    return elapsed


def _check_exported() -> None:
    from mcom.commerce.models import Order

    failed = Order.objects.exclude(oms_export_state=Order.EXPORT_EXPORTED).count()  # every round's orders
    if failed:
        raise SystemExit(f"{failed} orders were not exported")


def profiled(fn: Any) -> Any:
    """``fn`` under cProfile (all threads' time counted in the caller's clock), printing the top 30."""
    import cProfile
    import pstats

    def run(*args: Any) -> Any:
        profile = cProfile.Profile()
        result = profile.runcall(fn, *args)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        return result

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--orders", type=int, default=2_000, help="orders per round")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", common.PG_SERVER + "/postgres"),
                        help="a database on the PostgreSQL server to use (default: $BENCH_PG_URL, else $BENCH_PG/postgres)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (both sides)")
    parser.add_argument("--latency-ms", type=int, default=0, help="OMS latency injected by the sandbox")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the mcom path; print the top functions")
    parser.add_argument("--mode", choices=["lanes", "passes"], default="lanes",
                        help="lanes: mcom worker's cron and outbound lanes side by side; passes: export, then send")
    args = parser.parse_args()
    os.environ["MCOM_QUEUE__SEND_CONCURRENCY"] = str(args.concurrency)

    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mcom-bench-orders-") as tmp:
        root = Path(tmp)
        sandbox, sandbox_url = start_sandbox(root)
        admin = None
        if args.db == "postgres":
            db_url, admin = create_pg_database(args.pg_url)
        else:
            db_url = "sqlite:///var/mcom.sqlite3"
        try:
            configure(root, db_url, sandbox_url)
            set_latency(sandbox_url, args.latency_ms)
            make_store()
            print(f"{args.orders} orders per round (4 OMS lines each) on {args.db}, concurrency {args.concurrency}, "
                  f"OMS latency {args.latency_ms} ms, {args.rounds} rounds", flush=True)
            for r in range(args.rounds):
                make_orders(args.orders)
                payloads = prepared_payloads(f"B{r}-")
                path = lanes_path if args.mode == "lanes" else real_path
                mcom = profiled(path) if args.profile else path
                if r % 2 == 0:
                    base = baseline(sandbox_url, payloads, args.concurrency)
                    real = mcom(args.orders)
                else:
                    real = mcom(args.orders)
                    base = baseline(sandbox_url, payloads, args.concurrency)
                base_rate, real_rate = args.orders / base, args.orders / real
                ratios.append(real_rate / base_rate)
                print(f"round {r + 1}: baseline (bare httpx, {args.concurrency} threads) {base_rate:7.0f} orders/s   "
                      f"mcom (export + worker send) {real_rate:7.0f} orders/s   ratio {ratios[-1]:.2f}", flush=True)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=10)
            if admin is not None:
                drop_pg_database(admin, db_url)
    ratios.sort()
    print(f"median ratio mcom/baseline: {ratios[len(ratios) // 2]:.2f}  (aim >= 0.8)")


if __name__ == "__main__":
    main()
