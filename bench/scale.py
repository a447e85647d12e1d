"""Scale-out benchmark: k = 1, 2, 4 worker processes on separate hosts sharing ONE PostgreSQL and
one OMS, throughput vs k, duplicates and per-entity order violations from the OMS's journal.

    sudo python bench/scale.py [--k 1,2,4] [--n 1000] [--entities 200] [--latency 50] [--rounds 3]
                               [--batch-size 50] [--concurrency 8] [--worker-cmd "worker"]

Needs root (``ip netns``). Setup (not timed), all removed at the end — also on Ctrl-C, SIGTERM or a
failure, and a crashed run's leftovers (same names) are removed first:

- the "hosts": network namespaces ``mcomb-1`` … ``mcomb-<max k>``, each with a veth into the bridge
  ``mcombr0``; the bridge (this side) is 10.213.0.1/24, host n is 10.213.0.(10+n). No route out:
  the workers reach only the bridge address and their own loopback.
- ONE private PostgreSQL cluster (``initdb``/``pg_ctl`` from /usr/lib/postgresql/*/bin, a free port,
  ``listen_addresses=10.213.0.1``, trust for 10.213.0.0/24 only, fsync off; never the shared server),
  migrated with ``setup:upgrade``.
- the sandbox OMS on 10.213.0.1 with ``--latency`` ms per call (I/O bound load).

Per measurement: ``mcom worker`` (``--worker-cmd`` to change it; ``[queue] send_concurrency =
--concurrency``) is started in k namespaces (``ip netns exec``); once all k
hold a database connection (``pg_stat_activity`` by client address) and a few warm-up messages are
sent, N ``lines_shipped`` messages over M entities are logged in one transaction; time = commit →
last ``processed_at``. The sandbox journal gives duplicates (a message id received more than once)
and order violations (an entity's ``seq`` not increasing along the journal).

Baseline: k = 1 in the same round, scaled: efficiency = T(k) / (k · T(1)) (aim ≥ 0.9). Median of
``--rounds`` rounds; the order of k alternates between rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import harness  # noqa: E402


def wait_connected(hosts: harness.Hosts, k: int, procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    """Until each of the k worker hosts holds a connection to the database."""
    from django.db import connection

    addresses = [hosts.address(n) for n in range(1, k + 1)]
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT COUNT(DISTINCT client_addr) FROM pg_stat_activity WHERE host(client_addr) = ANY(%s)",
                        [addresses])
            if int(cur.fetchone()[0]) >= k:
                return
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise SystemExit(f"workers not connected within {timeout:g} s (exited: {dead})")
        time.sleep(0.2)


def measure(k: int, hosts: harness.Hosts, sb: harness.Sandbox, items: list[tuple[str, dict[str, object]]],
            worker_cmd: list[str], env: dict[str, str], logdir: Path, run: str) -> tuple[float, harness.Verdict, dict[str, int]]:
    harness.clear_log()
    procs = [harness.start_proc(hosts.exec_cmd(n, harness.mcom_cmd(*worker_cmd)), env, logdir / f"worker-{n}.out")
             for n in range(1, k + 1)]
    try:
        wait_connected(hosts, k, procs)
        warm, at = harness.enqueue([(f"bench:warm{i}", harness.params_of(i, 0, "warmup")) for i in range(2 * k)])
        w = harness.wait_drained(warm, at, timeout=60)
        if w.statuses.get("complete") != len(warm):
            raise SystemExit(f"the workers did not send the warm-up messages ({w.statuses}); see {logdir}")
        time.sleep(0.5)
        mark = sb.last_journal_id()
        ids, committed = harness.enqueue(items)
        drained = harness.wait_drained(ids, committed, timeout=60)
    finally:
        for p in procs:
            harness.stop_proc(p)
    return len(items) / drained.seconds, harness.verify(sb.journal(mark), drained.message_ids, run), drained.statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", default="1,2,4", help="worker host counts, comma-separated (max 8)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--entities", type=int, default=200)
    ap.add_argument("--latency", type=int, default=50, help="sandbox latency per call, ms")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=50, help="[queue] batch_size of the workers")
    ap.add_argument("--concurrency", type=int, default=8, help="[queue] send_concurrency of each worker")
    ap.add_argument("--worker-cmd", default=None, help='mcom subcommand and options (default "worker")')
    args = ap.parse_args()
    ks = [int(x) for x in args.k.split(",") if x.strip()]
    if 1 not in ks:
        ks.insert(0, 1)  # the baseline
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise SystemExit("scale.py needs root and iproute2 (ip netns)")
    worker_cmd = harness.worker_cmd(args.worker_cmd)

    root = Path(tempfile.mkdtemp(prefix="mcom-bench-scale-"))
    (root / "etc").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    hosts = harness.Hosts(max(ks))
    pg: harness.PgCluster | None = None
    sb: harness.Sandbox | None = None
    rates: dict[int, list[float]] = {k: [] for k in ks}
    effs: dict[int, list[float]] = {k: [] for k in ks}
    problems: list[str] = []
    try:
        with harness.sigterm_as_exit():
            harness.PgCluster.remove_stale()
            hosts.create()
            pg = harness.PgCluster(listen=hosts.server, allow=hosts.subnet).start()
            sb = harness.Sandbox(root, host=hosts.server)
            sb.latency(args.latency)
            harness.write_send_concurrency(root, args.concurrency)
            extra = {**harness.oms_env(hosts.url(sb.port)), "MCOM_TEST_HANDLERS": harness.HANDLERS,
                     "MCOM_QUEUE__BATCH_SIZE": str(args.batch_size)}
            env = common.Instance(root, "postgres", pg.url).env(**extra)
            subprocess.run(harness.mcom_cmd("setup:upgrade", "--skip-register"), env=env, check=True,
                           stdout=subprocess.DEVNULL, cwd=str(common.REPO))
            print(f"hosts: {', '.join(f'{hosts.name(n)}={hosts.address(n)}' for n in range(1, hosts.k + 1))}; "
                  f"PostgreSQL {pg.bin.parent.name} and sandbox on {hosts.server}; worker command: mcom {' '.join(worker_cmd)}; "
                  f"send_concurrency = {args.concurrency}",
                  flush=True)
            harness.setup_django(env)
            for r in range(args.rounds):
                order = ks if r % 2 == 0 else list(reversed(ks))
                got: dict[int, float] = {}
                for k in order:
                    run = f"k{k}r{r}"
                    rate, verdict, statuses = measure(k, hosts, sb, harness.workload(args.n, args.entities, run),
                                                      worker_cmd, env, root / "var" / "log", run)
                    got[k] = rate
                    rates[k].append(rate)
                    print(f"  round {r + 1} k={k}: {rate:8.1f} msgs/s; {verdict}", flush=True)
                    if not verdict.ok() or statuses.get("complete") != args.n:
                        problems.append(f"{run}: {verdict}; log statuses {statuses}")
                for k in ks:
                    effs[k].append(got[k] / (k * got[1]))
    finally:  # every step on its own: one failing cleanup must not leave the others undone
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        for step in (sb.stop if sb is not None else None, pg.stop if pg is not None else None, hosts.remove):
            if step is not None:
                try:
                    step()
                except Exception as e:  # noqa: BLE001 - report and go on cleaning
                    print(f"cleanup: {e}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nscale: n={args.n} entities={args.entities} sandbox latency {args.latency} ms, batch_size {args.batch_size}, "
          f"worker=`mcom {' '.join(worker_cmd)}`, one host per worker; median of {args.rounds}")
    rows = [[str(k), f"{harness.median(rates[k]):,.1f}", f"{k * harness.median(rates[1]):,.1f}",
             f"{harness.median(effs[k]):.2f}", " ".join(f"{e:.2f}" for e in effs[k])] for k in ks]
    print(common.table(["k", "msgs/s", "k × (k=1) msgs/s", "efficiency (aim >= 0.9)", "per round"], rows))
    print("duplicates / per-entity order: " + ("none (every message once, in order, every run)" if not problems
                                               else "FAILED\n  " + "\n  ".join(problems)))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
