"""Send benchmark: one worker process draining N outbound messages over M entities from the message
log to the sandbox OMS with injected latency, beside a bare concurrent httpx client measured in the
same run (same concurrency, same payloads, same sandbox, same latency).

    python bench/send.py --db sqlite|postgres [--n 1000] [--entities 100] [--latency 20,100]
                         [--concurrency 8] [--rounds 3] [--worker-cmd "worker"]

- **mcom**: ``mcom worker`` (``--worker-cmd`` to change it) runs idle against a fresh instance with
  ``[queue] send_concurrency = C`` in its etc/env.toml; one warm-up message proves it is up (OAuth
  token fetched, connection open); then N ``lines_shipped`` messages (round-robin over M entity keys,
  ~600 B params) are logged in one transaction (``outbox.enqueue_many``). Time: from that commit to
  the last row's ``processed_at``.
- **baseline**: the same params POSTed as signed-token JSON-RPC calls to the same path with one
  ``httpx.AsyncClient`` and C concurrent lanes, each lane owning the entities ``e % C`` and sending
  their messages in order (per-entity order kept, like the worker must).

Both are checked from the sandbox's journal: every message id received exactly once, per-entity
order (``seq`` increasing along the journal). Median of ``--rounds`` rounds, baseline and mcom
interleaved; prints msgs/s and the ratio mcom/baseline (aim ≥ 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_PG_DB", "mcom_bench_send")

import common  # noqa: E402
import harness  # noqa: E402


def baseline(sb: harness.Sandbox, path: str, items: list[tuple[str, dict[str, Any]]], lanes: int) -> tuple[float, list[str]]:
    """Seconds for the bare concurrent client to deliver ``items``; the message ids it used."""
    import httpx

    ids = [str(uuid.uuid4()) for _ in items]
    queues: list[list[int]] = [[] for _ in range(lanes)]
    for i, (key, _) in enumerate(items):
        queues[int(key.rsplit("e", 1)[1]) % lanes].append(i)
    bodies = [json.dumps({"jsonrpc": "2.0", "id": ids[i], "method": harness.OUT_METHOD, "params": p},
                         separators=(",", ":"), ensure_ascii=False) for i, (_, p) in enumerate(items)]

    async def run() -> float:
        limits = httpx.Limits(max_connections=lanes, max_keepalive_connections=lanes)
        async with httpx.AsyncClient(base_url=sb.url, timeout=60, limits=limits) as client:
            r = await client.post("oauth/token", data={"grant_type": "client_credentials", "client_id": harness.CLIENT_ID,
                                                       "client_secret": harness.CLIENT_SECRET})
            headers = {"Authorization": f"Bearer {r.json()['access_token']}", "Content-Type": "application/json"}

            async def lane(q: list[int]) -> None:
                for i in q:
                    resp = await client.post(path, content=bodies[i], headers=headers)
                    if resp.status_code != 200 or "error" in resp.json():
                        raise SystemExit(f"baseline: the sandbox refused a call: {resp.text[:200]}")

            t0 = time.perf_counter()
            await asyncio.gather(*(lane(q) for q in queues if q))
            return time.perf_counter() - t0

    return asyncio.run(run()), ids


def mcom_run(inst: common.Instance, sb: harness.Sandbox, items: list[tuple[str, dict[str, Any]]],
             worker_cmd: list[str], worker_env: dict[str, str], log: Path) -> tuple[harness.Drained, int]:
    """Start the worker, warm it up with one message, then time the drain of ``items``."""
    harness.clear_log()
    proc = harness.start_proc(harness.mcom_cmd(*worker_cmd), worker_env, log)
    try:
        warm, at = harness.enqueue([("bench:warmup", harness.params_of(0, 0, "warmup"))])
        w = harness.wait_drained(warm, at, timeout=60)
        if w.statuses.get("complete") != 1:
            raise SystemExit(f"the worker did not send the warm-up message ({w.statuses}); see {log}")
        time.sleep(0.5)
        ids, committed = harness.enqueue(items)
        drained = harness.wait_drained(ids, committed, timeout=60)
    finally:
        harness.stop_proc(proc)
    return drained, proc.returncode if proc.returncode is not None else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--entities", type=int, default=100)
    ap.add_argument("--latency", default="20,100", help="sandbox latency in ms, comma-separated")
    ap.add_argument("--concurrency", type=int, default=8, help="[queue] send_concurrency and the baseline's lanes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker-cmd", default=None, help='mcom subcommand and options (default "worker")')
    args = ap.parse_args()

    worker_cmd = harness.worker_cmd(args.worker_cmd)
    inst = common.make_instance(args.db)
    harness.write_send_concurrency(inst.root, args.concurrency)
    print(f"worker command: mcom {' '.join(worker_cmd)}; [queue] send_concurrency = {args.concurrency}")
    sb = harness.Sandbox(inst.root)
    extra = {**harness.oms_env(sb.url), "MCOM_TEST_HANDLERS": harness.HANDLERS}
    worker_env = inst.env(**extra)
    harness.setup_django(worker_env)
    from mcom import envconfig

    path = envconfig.current().service_bus.delegate_path.lstrip("/")
    results: dict[int, dict[str, list[float]]] = {}
    checks: list[str] = []
    try:
        for latency in [int(x) for x in args.latency.split(",") if x.strip()]:
            sb.latency(latency)
            res = results.setdefault(latency, {"base": [], "mcom": []})
            for r in range(args.rounds):
                run = f"l{latency}r{r}"
                items = harness.workload(args.n, args.entities, run)
                for which in (("base", "mcom") if r % 2 == 0 else ("mcom", "base")):
                    mark = sb.last_journal_id()
                    if which == "base":
                        seconds, mids = baseline(sb, path, items, args.concurrency)
                    else:
                        drained, _ = mcom_run(inst, sb, items, worker_cmd, worker_env,
                                              inst.root / "var" / "log" / "bench-worker.out")
                        seconds, mids = drained.seconds, drained.message_ids
                        if drained.statuses.get("complete") != args.n:
                            checks.append(f"{run} mcom: not all complete: {drained.statuses}")
                    verdict = harness.verify(sb.journal(mark), mids, run)
                    rate = args.n / seconds
                    res[which].append(rate)
                    print(f"  latency {latency} ms round {r + 1} {which:4}: {rate:8.1f} msgs/s ({seconds:.2f} s); {verdict}",
                          flush=True)
                    if not verdict.ok():
                        checks.append(f"{run} {which}: {verdict}")
    finally:
        sb.stop()
    print(f"\nsend: db={args.db} n={args.n} entities={args.entities} concurrency={args.concurrency} "
          f"worker=`mcom {' '.join(worker_cmd)}`; "
          f"median of {args.rounds}")
    rows = []
    for latency, res in results.items():
        b, m = harness.median(res["base"]), harness.median(res["mcom"])
        rows.append([f"{latency} ms", f"{b:,.1f}", f"{m:,.1f}", f"{m / b:.2f}",
                     " ".join(f"{x / y:.2f}" for x, y in zip(res["mcom"], res["base"], strict=True))])
    print(common.table(["sandbox latency", f"baseline ({args.concurrency} lanes) msgs/s", "mcom worker msgs/s",
                        "ratio (aim >= 0.7)", "per round"], rows))
    print("exactly-once / per-entity order: " + ("OK (every message once, in order, both runs)" if not checks
                                                 else "FAILED\n  " + "\n  ".join(checks)))
    if checks:
        sys.exit(1)


if __name__ == "__main__":
    main()
