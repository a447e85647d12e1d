"""Cost growth of the message log: ingest and process rates with ``--rows`` (default 1,000,000)
finished rows in ``mcom_logged_messages_queue`` beside the same measurements on an empty log
(the baseline, same run), and ``oms:queue:prune`` of those rows while deliveries arrive: the
ingest rate and latency during the prune beside the rate without it, and the prune time.

    python bench/growth.py --db sqlite|postgres [--rows 1000000] [--n 10000] [--concurrency 64]

The rows are filled in one statement (PostgreSQL: ``INSERT … SELECT`` from ``generate_series``;
SQLite: a recursive CTE), ``complete``, created 60 days ago, with a small body (~120 B: the
log's size on disk is not what is measured, its row count is). Prints the ``EXPLAIN`` of the
claim's window query, the ingest insert's conflict probe and the prune's id query on the full log.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

BODY = '{"jsonrpc":"2.0","id":"old-%s","method":"mcom.bench.noop","params":{"order":{"id":"%s","status":"COMPLETE"}}}'


def fill_finished(inst: common.Instance, rows: int) -> float:
    """``rows`` finished inbound rows created 60 days ago, in one statement; returns seconds."""
    cols = ("direction, topic, message_id, kind, entity_key, dedupe_key, payload, status, attempts, next_attempt_at, "
            "locked_until, last_error, result, created_at, updated_at, processed_at")
    conn = common.connect(inst)
    t = time.perf_counter()
    try:
        cur = conn.cursor()
        if inst.db == "postgres":
            cur.execute(
                f"INSERT INTO mcom_logged_messages_queue ({cols}) SELECT 'in', 'mcom.bench.noop', 'old-' || g, '', "  # noqa: S608
                "'order:' || lpad(mod(g, 5000)::text, 9, '0'), NULL, "
                "format(%s, g, lpad(mod(g, 5000)::text, 9, '0')), 'complete', 1, now() - interval '60 days', NULL, '', '', "
                "now() - interval '60 days', now() - interval '60 days', now() - interval '60 days' "
                "FROM generate_series(1, %s) g",
                [BODY, rows],
            )
            conn.commit()
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE mcom_logged_messages_queue")
        else:
            cur.execute(
                f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) "  # noqa: S608
                f"INSERT INTO mcom_logged_messages_queue ({cols}) SELECT 'in', 'mcom.bench.noop', 'old-' || n, '', "
                "'order:' || printf('%09d', n % 5000), NULL, "
                "printf(?, n, printf('%09d', n % 5000)), 'complete', 1, datetime('now', '-60 days'), NULL, '', '', "
                "datetime('now', '-60 days'), datetime('now', '-60 days'), datetime('now', '-60 days') FROM g",
                [rows, BODY.replace("%s", "%d", 1)],
            )
            conn.commit()
            cur.execute("ANALYZE")
            conn.commit()
    finally:
        conn.close()
    return time.perf_counter() - t


def explain(inst: common.Instance) -> list[str]:
    """The plans of the queries whose cost must not grow with the finished rows."""
    queries = [
        ("claim window (log._WINDOW_SQL)",
         "SELECT id, entity_key, status, next_attempt_at, locked_until FROM mcom_logged_messages_queue "
         "WHERE direction = 'in' AND status IN ('new', 'retry', 'processing') AND id > 0 ORDER BY id LIMIT 500"),
        ("ingest conflict probe (unique direction, message_id)",
         "SELECT payload FROM mcom_logged_messages_queue WHERE direction = 'in' AND message_id = 'x'"),
        ("prune ids (prune.prune)",
         "SELECT id FROM mcom_logged_messages_queue WHERE status IN ('complete', 'ignored') "
         "AND created_at < '2099-01-01' ORDER BY id LIMIT 1000"),
    ]
    out = []
    conn = common.connect(inst)
    try:
        cur = conn.cursor()
        for label, sql in queries:
            cur.execute(("EXPLAIN " if inst.db == "postgres" else "EXPLAIN QUERY PLAN ") + sql)
            plan = [str(r[0] if inst.db == "postgres" else r[-1]) for r in cur.fetchall()]
            out.append(f"  {label}: " + " / ".join(p.strip() for p in plan))
    finally:
        conn.close()
    return out


def ingest(inst: common.Instance, args: argparse.Namespace, *, during: Any = None) -> tuple[common.LoadResult, Any]:
    """Serve ``args.n`` deliveries with ``mcom serve``; ``during``: started after warm-up, joined after."""
    port = common.free_port()
    cmd = [sys.executable, "-m", "mcom.cli.main", "serve", "--no-cron", "--port", str(port), "--workers", str(args.workers)]
    proc = common.start_server(cmd, inst.env(), port)
    extra = None
    try:
        common.run_load(common.raw_requests(common.make_bodies(500), port), port, args.concurrency)
        if during is not None:
            extra = during()
        result = common.run_load(common.raw_requests(common.make_bodies(args.n), port), port, args.concurrency)
    finally:
        common.stop_server(proc)
    if result.errors:
        print(f"WARNING: {result.errors} errors", file=sys.stderr)
    return result, extra


def drop_new(inst: common.Instance) -> None:
    """Remove the rows a run left waiting (the ingested deliveries), keep the finished ones."""
    conn = common.connect(inst)
    try:
        conn.cursor().execute("DELETE FROM mcom_logged_messages_queue WHERE status <> 'complete' OR message_id NOT LIKE 'old-%'")
        conn.commit()
    finally:
        conn.close()


def process(inst: common.Instance, n: int) -> float:
    """Store ``n`` new no-op messages, drain them with ``oms:queue:process`` in a child; msgs/s."""
    conn = common.connect(inst)
    mark = "%s" if inst.db == "postgres" else "?"
    now = "now()" if inst.db == "postgres" else "datetime('now')"
    try:
        cur = conn.cursor()
        rows = []
        for i in range(n):
            mid = str(uuid.uuid4())
            key = f"{i % 5000:09d}"
            rows.append((mid, f"order:{key}", json.dumps({"jsonrpc": "2.0", "id": mid, "method": common.METHOD,
                                                          "params": {"order": {"id": key, "status": "COMPLETE"}}})))
        cur.executemany(
            "INSERT INTO mcom_logged_messages_queue (direction, topic, message_id, kind, entity_key, payload, status, "  # noqa: S608
            "attempts, next_attempt_at, last_error, result, created_at, updated_at) "
            f"VALUES ('in', '{common.METHOD}', {mark}, '', {mark}, {mark}, 'new', 0, {now}, '', '', {now}, {now})", rows)
        conn.commit()
    finally:
        conn.close()
    code = ("import time, django; django.setup(); from mcom.service_bus import worker; t = time.perf_counter(); "
            "n = worker.process_inbound(); print(n, time.perf_counter() - t)")
    env = inst.env(DJANGO_SETTINGS_MODULE="mcom.settings")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout.split()
    done, seconds = int(out[-2]), float(out[-1])
    assert done == n, (done, n)
    return n / seconds


def start_prune(inst: common.Instance) -> dict[str, Any]:
    """``oms:queue:prune --days 30`` in a child process, timed by a thread."""
    state: dict[str, Any] = {}
    proc = subprocess.Popen([sys.executable, "-m", "mcom.cli.main", "oms:queue:prune", "--days", "30"],
                            env=inst.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()

    def wait() -> None:
        state["output"] = proc.communicate()[0].strip()
        state["seconds"] = time.perf_counter() - t0
        state["rc"] = proc.returncode

    state["thread"] = threading.Thread(target=wait, daemon=True)
    state["thread"].start()
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    inst = common.make_instance(args.db)
    print(f"growth: db={args.db} rows={args.rows:,} n={args.n} concurrency={args.concurrency}", file=sys.stderr)
    empty_ingest, _ = ingest(inst, args)
    common.truncate(inst)
    empty_process = process(inst, args.n)
    common.truncate(inst)
    fill_s = fill_finished(inst, args.rows)
    print(f"filled {args.rows:,} finished rows in {fill_s:.1f} s", file=sys.stderr)
    plans = explain(inst)
    full_ingest, _ = ingest(inst, args)
    drop_new(inst)
    full_process = process(inst, args.n)
    drop_new(inst)
    before = common.sql_count(inst)
    during, prune = ingest(inst, args, during=lambda: start_prune(inst))
    prune["thread"].join()
    left = common.sql_count(inst, "WHERE status = 'complete' AND created_at < " +
                            ("now() - interval '30 days'" if inst.db == "postgres" else "datetime('now', '-30 days')"))
    overlap = "prune still running when the load ended" if prune["seconds"] > during.seconds else \
        f"prune ended {during.seconds - prune['seconds']:.1f} s before the load"

    def lat(r: common.LoadResult) -> str:
        return f"p50 {r.p50:.1f} / p99 {r.pct(0.99):.1f} / max {max(r.latencies) * 1000:.0f} ms"

    rows = [
        ["ingest msgs/s", f"{empty_ingest.rate:,.0f} ({lat(empty_ingest)})", f"{full_ingest.rate:,.0f} ({lat(full_ingest)})",
         f"{full_ingest.rate / empty_ingest.rate:.2f}"],
        ["process msgs/s (no-op)", f"{empty_process:,.0f}", f"{full_process:,.0f}", f"{full_process / empty_process:.2f}"],
        ["ingest msgs/s during prune", f"{full_ingest.rate:,.0f} (no prune, {args.rows:,} rows)",
         f"{during.rate:,.0f} ({lat(during)})", f"{during.rate / full_ingest.rate:.2f}"],
    ]
    print(f"\ngrowth: db={args.db} n={args.n} concurrency={args.concurrency}; {args.rows:,} finished rows "
          f"(filled in {fill_s:.1f} s)")
    print(common.table(["measure", "baseline: empty log", f"{args.rows:,} finished rows", "ratio"], rows))
    print(f"prune of {args.rows:,} rows while ingesting: {prune['seconds']:.1f} s "
          f"({args.rows / prune['seconds']:,.0f} rows/s; rc {prune['rc']}; {overlap}); rows in the log before "
          f"{before:,}, old finished rows left {left:,}")
    print(f"  prune said: {prune['output'][-200:]}")
    print("plans on the full log:")
    print("\n".join(plans))


if __name__ == "__main__":
    main()
