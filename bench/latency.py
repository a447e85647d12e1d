"""Latency benchmark: signed deliveries at a steady rate into the real ``mcom serve`` (web + its
worker child, as shipped), time from send until the message is applied, beside a floor measured in
the same run on the same server.

    python bench/latency.py --db sqlite|postgres [--rate 100] [--seconds 20] [--rounds 3] [--web-workers 2]

Each delivery is a ~1.5 KB order update of the no-op inbound route ``mcom.bench.noop``
(bench/common.py); "applied" is the commit of the handler together with ``status = complete`` and
``processed_at`` (one transaction, the exactly-once effect). The sender is open-loop: delivery ``i``
is written at ``t0 + i / rate`` over a pool of 8 keep-alive connections and its wall-clock send time
is kept; after the run every row's ``processed_at`` is read and ``processed_at - sent`` gives the
latency (same host, same clock). Prints p50 / p99 / max (aim: p99 < 0.3 s) and the ack latency.

Baseline (the floor): the same deliveries into the same server run without its worker
(``serve --no-worker``), while a raw loop in a separate process polls
the table every millisecond (``SELECT … WHERE status = 'new'``) and marks each new row
``complete`` with its ``processed_at`` in its own transaction — no claim, lease, ordering or
handler dispatch. It shows what ingest + one commit per message cost on this machine, so the gap
between the two is the worker's own wake-up and processing delay. Median of ``--rounds`` rounds,
baseline and mcom interleaved.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_PG_DB", "mcom_bench_latency")

import common  # noqa: E402
import harness  # noqa: E402


def raw_loop(db: str, root: str) -> None:
    """The baseline's processing loop (run in its own process until SIGTERM)."""
    inst = common.Instance(Path(root), db, common.PG_URL if db == "postgres" else "")
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    conn = common.connect(inst)
    mark = "%s" if db == "postgres" else "?"
    update = (f"UPDATE mcom_logged_messages_queue SET status = 'complete', processed_at = {mark}, updated_at = {mark}"
              f" WHERE id = {mark}")
    cur = conn.cursor()
    while not stop[0]:
        cur.execute("SELECT id FROM mcom_logged_messages_queue WHERE direction = 'in' AND status = 'new'"
                    " ORDER BY id LIMIT 500")
        rows = cur.fetchall()
        conn.commit()
        if not rows:
            time.sleep(0.001)
            continue
        for (row_id,) in rows:
            now: Any = datetime.now(UTC)
            if db != "postgres":
                now = now.replace(tzinfo=None).isoformat(" ")
            cur.execute(update, (now, now, row_id))
            conn.commit()
    conn.close()


def applied(inst: common.Instance, message_ids: list[str]) -> dict[str, float | None]:
    """processed_at (POSIX) of each inbound message id (None: not applied yet)."""
    conn = common.connect(inst)
    try:
        cur = conn.cursor()
        cur.execute("SELECT message_id, processed_at FROM mcom_logged_messages_queue WHERE direction = 'in'")
        got = {str(m): (harness._utc(p) if p is not None else None) for m, p in cur.fetchall()}
    finally:
        conn.close()
    return {m: got.get(m) for m in message_ids}


def wait_applied(inst: common.Instance, ids: list[str], timeout: float) -> dict[str, float | None]:
    deadline = time.monotonic() + timeout
    while True:
        got = applied(inst, ids)
        if all(v is not None for v in got.values()) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def measure(inst: common.Instance, which: str, args: argparse.Namespace, no_worker: str) -> dict[str, float]:
    common.truncate(inst)
    port = common.free_port()
    cmd = harness.mcom_cmd("serve", "--port", str(port), "--web-workers", str(args.web_workers))
    loop: subprocess.Popen[bytes] | None = None
    if which == "base":
        cmd.append(no_worker)
        loop = subprocess.Popen([sys.executable, __file__, "--raw-loop", inst.db, str(inst.root)], env=inst.env(),
                                start_new_session=True)
    server = harness.start_proc(cmd, inst.env(), inst.root / "var" / "log" / f"bench-serve-{which}.out")
    common.wait_port(port, server)
    time.sleep(1.0)  # let every web worker and the worker child finish importing
    try:
        warm = harness.send_steady(common.make_bodies(args.warmup), port, rate=args.rate)
        got = wait_applied(inst, warm.message_ids, 60)
        if any(v is None for v in got.values()):
            raise SystemExit(f"{which}: the warm-up deliveries were not applied within 60 s")
        time.sleep(1.0)
        sent = harness.send_steady(common.make_bodies(int(args.rate * args.seconds)), port, rate=args.rate)
        got = wait_applied(inst, sent.message_ids, 120)
    finally:
        common.stop_server(server)
        if loop is not None:
            loop.send_signal(signal.SIGTERM)
            loop.wait(timeout=20)
    lat = [p - sent.sent_at[m] for m, p in got.items() if p is not None]
    missing = sum(1 for v in got.values() if v is None)
    if missing or sent.errors:
        print(f"  WARNING {which}: {sent.errors} errors, {missing} of {len(got)} not applied", file=sys.stderr)
    return {"p50": harness.pct(lat, 0.5), "p99": harness.pct(lat, 0.99), "max": max(lat) if lat else float("nan"),
            "ack99": harness.pct(sent.ack_s, 0.99), "missing": float(missing + sent.errors)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--raw-loop":
        raw_loop(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rate", type=float, default=100.0, help="deliveries per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--web-workers", type=int, default=2, help="web (uvicorn) processes of serve; 1 message worker")
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()

    no_worker = "--no-worker"
    inst = common.make_instance(args.db)
    runs: dict[str, list[dict[str, float]]] = {"base": [], "mcom": []}
    with harness.sigterm_as_exit():
        for r in range(args.rounds):
            for which in (("base", "mcom") if r % 2 == 0 else ("mcom", "base")):
                m = measure(inst, which, args, no_worker)
                runs[which].append(m)
                print(f"  round {r + 1} {which:4}: p50 {m['p50'] * 1000:7.1f} ms  p99 {m['p99'] * 1000:7.1f} ms  "
                      f"max {m['max'] * 1000:7.1f} ms  (ack p99 {m['ack99'] * 1000:.1f} ms)", flush=True)

    def med(which: str, key: str) -> float:
        return harness.median([x[key] for x in runs[which]])

    print(f"\nlatency: db={args.db} {args.rate:g} deliveries/s for {args.seconds:g} s, serve --web-workers {args.web_workers}; "
          f"send → applied, median of {args.rounds} rounds")
    rows = [
        [f"floor: serve {no_worker} + raw 1 ms polling loop", *(f"{med('base', k) * 1000:.1f}" for k in ("p50", "p99", "max", "ack99")),
         f"{int(sum(x['missing'] for x in runs['base']))}"],
        ["mcom serve (web + its worker child)", *(f"{med('mcom', k) * 1000:.1f}" for k in ("p50", "p99", "max", "ack99")),
         f"{int(sum(x['missing'] for x in runs['mcom']))}"],
    ]
    print(common.table(["server", "p50 ms", "p99 ms", "max ms", "ack p99 ms", "lost/errors"], rows))
    p99 = med("mcom", "p99")
    print(f"ratio p99 mcom/floor: {p99 / med('base', 'p99'):.2f}; mcom p99 {p99 * 1000:.0f} ms "
          f"({'meets' if p99 < 0.3 else 'misses'} the aim p99 < 300 ms)")


if __name__ == "__main__":
    main()
