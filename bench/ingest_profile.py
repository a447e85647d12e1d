"""CPU cost per delivery of the served inbound path, in process (no HTTP, no load generator):
``mcom.service_bus.ingest`` driven through its ASGI ``handle`` by C concurrent tasks, with the
real group-commit writer on a fresh instance database. Prints µs per delivery and, with
``--profile``, the top of a cProfile of the run. Run with another tree's ``src`` on PYTHONPATH to
compare commits (the ingest regression hunt in bench/README.md).

    python bench/ingest_profile.py --db sqlite [--n 20000] [--concurrency 64] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


async def drive(handle: Any, requests: list[tuple[dict[str, Any], bytes]], concurrency: int) -> int:
    cursor = [0]
    ok = [0]

    async def one(scope: dict[str, Any], body: bytes) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                ok[0] += 1

        await handle(scope, receive, send)

    async def worker() -> None:
        while cursor[0] < len(requests):
            i = cursor[0]
            cursor[0] += 1
            await one(*requests[i])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--patch", action="append", default=[], metavar="MODULE:FUNC=VALUE",
                    help="diagnosis: replace a function by one returning VALUE (python literal), "
                         "e.g. mcom.service_bus.integration:enabled=True")
    args = ap.parse_args()

    inst = common.make_instance(args.db)
    os.environ.update(inst.env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import django

    django.setup()
    common.install()
    import uvloop

    from mcom.service_bus import ingest, signing

    def requests(n: int) -> list[tuple[dict[str, Any], bytes]]:
        out = []
        for b in common.make_bodies(n):
            headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                       (b"x-signature", signing.sign(common.SECRET, b).encode()), (b"content-length", str(len(b)).encode())]
            out.append(({"type": "http", "method": "POST", "path": "/mcom/service-bus", "headers": headers,
                         "client": ("127.0.0.1", 5555)}, b))
        return out

    import ast
    import importlib

    for spec in args.patch:
        target, value = spec.split("=", 1)
        mod, func = target.split(":")
        fixed = ast.literal_eval(value)
        setattr(importlib.import_module(mod), func, lambda *a, _v=fixed, **k: _v)
    warm, reqs = requests(1000), requests(args.n)
    uvloop.install()
    asyncio.run(drive(ingest.handle, warm, args.concurrency))
    prof = cProfile.Profile() if args.profile else None
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    if prof:
        prof.enable()
    ok = asyncio.run(drive(ingest.handle, reqs, args.concurrency))
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    w = ingest.get_writer()
    batches = f"{w.rows / w.batches:.0f} rows per commit" if w.batches else ""
    ingest.close_writers()
    print(f"{ok} of {args.n} accepted; {wall / args.n * 1e6:.0f} µs wall, {cpu / args.n * 1e6:.0f} µs CPU per delivery "
          f"({args.n / wall:,.0f}/s; stored {common.sql_count(inst)}; {batches})")
    if prof:
        pstats.Stats(prof).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("BENCH_PROFILE_TOP", "25")))


if __name__ == "__main__":
    main()
