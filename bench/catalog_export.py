"""Benchmark: full-catalog export of 100,000 products to the sandbox OMS — products/s and memory.

    .venv/bin/python bench/catalog_export.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/catalog_export.py --db sqlite --sizes 20000,100000

Per database and catalog size, in a child process with a fresh database and a fresh sandbox
OMS running in its own process (real HTTP on loopback):

- **connector**: ``catalog.services.run_export()`` — keyset pages of 500 products, each page
  mapped, written to the message log (set-based), then sent by the worker
  (``worker.send_messages``: claim, OMS client, set-based recording with the ``on_sent_many``
  hook); products/s over the whole export;
- **memory**: peak RSS sampled after every page, minus the RSS before the export (the export's
  own growth), for a small and a large catalog — it must not grow with the catalog size;
- **baseline**, same run, another fresh sandbox: bare ``httpx.Client`` posts of the same
  prepared JSON-RPC bodies (built beforehand, not timed) to the same ``events`` endpoint —
  the HTTP + sandbox ceiling. Ratio = connector products/s ÷ baseline posts/s.
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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import fresh_database

CLIENT_ID, CLIENT_SECRET = "bench", "bench-client-secret"
SECRET = "bench-delivery-secret-0123456789abcdef"
BASELINE_MAX = 20_000
SANDBOX = """
import sys, time
from mcom.sandbox.testing import SandboxServer
server = SandboxServer(sys.argv[1], client_id=sys.argv[2], client_secret=sys.argv[3]).start()
print(server.port, flush=True)
while True:
    time.sleep(3600)
"""


def rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def database(kind: str) -> Any:
    return fresh_database(kind, "export")


@contextmanager
def sandbox() -> Iterator[str]:
    """A sandbox OMS in its own process; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="mcom-bench-sandbox-") as d:
        proc = subprocess.Popen([sys.executable, "-c", SANDBOX, d, CLIENT_ID, CLIENT_SECRET],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            yield f"http://127.0.0.1:{port}/"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def setup_django(db_url: str, oms_url: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="mcom-bench-"))
    (root / "etc").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    os.environ.update({
        "MCOM_ROOT": str(root), "MCOM_DB__URL": db_url, "MCOM_MODULES": "catalog",
        "MCOM_SERVICE_BUS__URL": oms_url, "MCOM_SERVICE_BUS__OAUTH_SERVER_URL": oms_url,
        "MCOM_SERVICE_BUS__OAUTH_CLIENT_ID": CLIENT_ID, "MCOM_SERVICE_BUS__OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "MCOM_SERVICE_BUS__SECRET": SECRET,
    })
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def create_catalog(n: int) -> None:
    from mcom.commerce.models import Product

    for start in range(0, n, 5000):
        Product.objects.bulk_create([
            Product(sku=f"SKU-{i:07d}", name=f"Product {i}", custom_attributes={"color": "blue", "ean": str(i)})
            for i in range(start, min(n, start + 5000))
        ])


def baseline(n: int) -> float:
    """Bare httpx posts of prepared bodies (the first ``n`` products) to a fresh sandbox; posts/s."""
    import httpx

    from mcom.catalog import sync
    from mcom.commerce.models import Product

    ctx = sync.mapping_context()
    bodies = [
        json.dumps({"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": "magento.catalog.product_management.updated",
                    "params": sync.spec_for(p, ctx).to_params()}, separators=(",", ":")).encode()
        for p in Product.objects.order_by("id")[:n].iterator(chunk_size=2000)
    ]
    with sandbox() as url, httpx.Client(base_url=url, timeout=30) as http:
        token = http.post("oauth/token", data={"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                               "client_secret": CLIENT_SECRET}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        t = time.perf_counter()
        for body in bodies:
            http.post("events", content=body, headers=headers).raise_for_status()
        return len(bodies) / (time.perf_counter() - t)


def child(db: str, n: int) -> dict[str, Any]:
    with database(db) as url, sandbox() as oms:
        setup_django(url, oms)
        from django.conf import settings  # noqa: F401  (configured)

        from mcom.catalog import services

        create_catalog(n)
        import gc

        gc.collect()
        before = rss_mb()
        peak = before

        def progress(task: Any) -> None:
            nonlocal peak
            peak = max(peak, rss_mb())

        t = time.perf_counter()
        task = services.run_export(progress=progress)
        seconds = time.perf_counter() - t
        assert task.status == "complete", (task.status, task.sent, n)
        assert task.sent == task.processed == n + 1, (task.status, task.sent, n)
        posts = baseline(min(n, BASELINE_MAX))
    return {"db": db, "n": n, "seconds": seconds, "rate": (n + 1) / seconds, "rss_before": before,
            "rss_peak": peak, "baseline": posts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print("RESULT " + json.dumps(child(args.db, sizes[0])), flush=True)
        return 0
    for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        print(f"catalog export to the sandbox OMS ({db})", flush=True)
        for n in sizes:
            out = subprocess.run([sys.executable, __file__, "--child", "--db", db, "--sizes", str(n)],
                                 capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if out.returncode or line is None:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                return 1
            r = json.loads(line[7:])
            print(f"  {n:>7,} products: {r['seconds']:7.1f} s  {r['rate']:6.0f} products/s   "
                  f"baseline bare httpx {r['baseline']:6.0f} posts/s   ratio {r['rate'] / r['baseline']:.2f}   "
                  f"RSS +{r['rss_peak'] - r['rss_before']:.1f} MiB during export "
                  f"(peak {r['rss_peak']:.0f} MiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
