"""Ingest benchmark: signed deliveries accepted per second by the real server (`mcom serve`,
uvicorn + httptools + uvloop, fast ASGI path with group commit), beside a baseline measured in
the same run and interleaved with it (B M B M B M): a minimal ASGI handler on the same stack that
verifies the HMAC and inserts the row with group commit (bench/baseline_app.py; ``--baseline
autocommit``: one commit per request, the old baseline).

    python bench/ingest.py --db sqlite|postgres --n 20000 --concurrency 64 [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def measure(inst: common.Instance, which: str, bodies: list[bytes], args: argparse.Namespace) -> common.LoadResult:
    common.truncate(inst)
    port = common.free_port()
    if which == "mcom":
        cmd = [sys.executable, "-m", "mcom.cli.main", "serve", "--no-worker", "--port", str(port),
               "--web-workers", str(args.workers)]
        env = inst.env()
    else:
        cmd = [
            sys.executable, "-m", "uvicorn", "baseline_app:app", "--port", str(port), "--workers", str(args.workers),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        ]
        env = inst.env(
            BENCH_DB=inst.db, BENCH_SECRET=common.SECRET, BENCH_PG_URL=common.PG_URL, BENCH_BASELINE=args.baseline,
            BENCH_SQLITE_PATH=str(inst.root / "var" / "bench.sqlite3"),
        )
    env.update(args.extra_env)
    proc = common.start_server(cmd, env, port)
    try:
        warm = common.raw_requests(common.make_bodies(args.warmup), port)
        common.run_load(warm, port, args.concurrency)
        result = common.run_load(common.raw_requests(bodies, port), port, args.concurrency)
    finally:
        common.stop_server(proc)
    stored = common.sql_count(inst) - args.warmup
    if stored != len(bodies) or result.errors:
        print(f"WARNING {which}: {result.errors} errors, {stored} of {len(bodies)} rows stored", file=sys.stderr)
    return result


def as_measure(r: common.LoadResult) -> common.Measure:
    return common.Measure(r.rate, f"p50 {r.p50:.1f} / p99 {r.pct(0.99):.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=1500, help="approximate body size in bytes")
    ap.add_argument("--baseline", choices=["group", "autocommit"], default="group",
                    help="group: HMAC + group-commit INSERT (default); autocommit: one commit per request")
    args = ap.parse_args()
    args.extra_env = {}

    inst = common.make_instance(args.db)
    bodies = common.make_bodies(args.n, args.size)
    label = "HMAC + group-commit INSERT" if args.baseline == "group" else "HMAC + autocommit INSERT"
    res = common.interleaved(
        args.rounds,
        lambda: as_measure(measure(inst, "baseline", bodies, args)),
        {"mcom serve": lambda: as_measure(measure(inst, "mcom", bodies, args))},
        baseline_name=f"baseline ({label})",
    )
    print(f"\ningest: db={args.db} n={args.n} concurrency={args.concurrency} workers={args.workers} "
          f"body≈{len(bodies[0])} B rounds={args.rounds}")
    print(res.report())
    print(f"median ratio mcom/baseline: {res.median_ratio('mcom serve'):.2f}")


if __name__ == "__main__":
    main()
