"""Shared benchmark plumbing: instance setup on SQLite/PostgreSQL, the benchmark route, server
subprocesses and a fast pure-Python HTTP/1.1 load generator (asyncio + uvloop, raw sockets).

Also imported by the benchmarked server (``MCOM_TEST_HANDLERS=common``): :func:`install` registers
the no-op inbound route ``mcom.bench.noop``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
METHOD = "mcom.bench.noop"
SECRET = "bench-delivery-secret-0123456789abcdef"
#: Benchmark settings come from ``BENCH_*`` variables: the instance config loader
#: (:mod:`mcom.envconfig`) reads every ``MCOM_*`` variable as a config key and refuses unknown ones.
#: ``BENCH_PG``: the PostgreSQL server (no database); ``BENCH_PG_DB``: the benchmark database
#: (dropped and recreated) — keeps parallel runs apart; ``BENCH_PG_URL``: a database to connect to
#: for the order export benchmarks. The names 0.1.0's benchmarks read, ``MCOM_BENCH_PG`` (the
#: server) and ``MCOM_BENCH_PG_URL`` (that database), still work: see :func:`adopt_old_names`.
OLD_NAMES = {"MCOM_BENCH_PG": "BENCH_PG", "MCOM_BENCH_PG_URL": "BENCH_PG_URL"}


def adopt_old_names(environ: Any = os.environ) -> None:
    """Take ``MCOM_BENCH_PG``/``MCOM_BENCH_PG_URL`` as ``BENCH_PG``/``BENCH_PG_URL`` (a ``BENCH_*``
    value set too wins) and remove them from the environment, before any instance config is loaded
    here or in a child: the loader would refuse them ("bench_pg: unknown key")."""
    for old, new in OLD_NAMES.items():
        value = environ.pop(old, None)
        if value is not None:
            environ.setdefault(new, value)


adopt_old_names()
PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
PG_DB = os.environ.get("BENCH_PG_DB", "mcom_bench")
PG_URL = f"{PG_SERVER}/{PG_DB}"


# ------------------------------------------------------------------------ the bench route


def install() -> None:
    """Register the no-op inbound route (called at app-ready in server/worker processes)."""
    from mcom.service_bus import registry

    if METHOD not in registry.all_inbound():
        registry.inbound(METHOD, module="service_bus", entity_key=lambda p: f"order:{p['order']['id']}")(noop)


def noop(message: Any) -> None:
    return None


# ------------------------------------------------------------------------------ instance


@dataclass
class Instance:
    root: Path
    db: str  # sqlite | postgres
    db_url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCOM_")}
        env.update(
            MCOM_ROOT=str(self.root),
            MCOM_DB__URL=self.db_url,
            MCOM_SERVICE_BUS__SECRET=SECRET,
            MCOM_SERVICE_BUS__SECURE_ENDPOINT="true",
            MCOM_TEST_HANDLERS="common",
            PYTHONPATH=os.pathsep.join([str(BENCH_DIR), os.environ.get("PYTHONPATH", "")]),
        )
        env.update(extra)
        return env


def make_instance(db: str) -> Instance:
    """A fresh instance root with a migrated database (PostgreSQL: database :data:`PG_DB` recreated)."""
    root = Path(tempfile.mkdtemp(prefix="mcom-bench-"))
    (root / "etc").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    if db == "postgres":
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
        url = PG_URL
    else:
        url = "sqlite:///var/bench.sqlite3"
    inst = Instance(root, db, url)
    subprocess.run(
        [sys.executable, "-m", "mcom.cli.main", "setup:upgrade", "--skip-register"],
        env=inst.env(), check=True, stdout=subprocess.DEVNULL,
    )
    return inst


def connect(inst: Instance) -> Any:
    """A DB-API connection to the instance database (autocommit off)."""
    if inst.db == "postgres":
        import psycopg

        return psycopg.connect(PG_URL)
    import sqlite3

    conn = sqlite3.connect(str(inst.root / "var" / "bench.sqlite3"), timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def sql_count(inst: Instance, where: str = "") -> int:
    conn = connect(inst)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM mcom_logged_messages_queue {where}")
        return int(cur.fetchone()[0])
    finally:
        conn.close()


def truncate(inst: Instance) -> None:
    conn = connect(inst)
    try:
        conn.cursor().execute("DELETE FROM mcom_logged_messages_queue")
        conn.commit()
        if inst.db == "postgres":
            conn.autocommit = True
            conn.cursor().execute("VACUUM ANALYZE mcom_logged_messages_queue")
    finally:
        conn.close()


# -------------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def start_server(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), start_new_session=True)
    wait_port(port, proc)
    time.sleep(1.0)  # let every worker process finish importing
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ----------------------------------------------------------------------------- deliveries


def make_bodies(n: int, size: int = 1500) -> list[bytes]:
    """``n`` distinct JSON-RPC deliveries of about ``size`` bytes (an order update, padded)."""
    out = []
    for i in range(n):
        params = {
            "order": {
                "id": f"{i % 5000:09d}",
                "status": "COMPLETE",
                "status_reason": "FULLYSHIPPED",
                "lines": [{"id": f"{i}-{k}", "sku": f"SKU-{k:05d}", "status": "shipped", "qty": 1} for k in range(3)],
                "note": "",
            }
        }
        doc = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": METHOD, "params": params}
        raw = json.dumps(doc, separators=(",", ":"))
        pad = max(size - len(raw), 0)
        params["order"]["note"] = "x" * pad
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def raw_requests(bodies: list[bytes], port: int, path: str = "/mcom/service-bus") -> list[bytes]:
    from mcom.service_bus import signing

    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    return [
        (head + f"X-Signature: {signing.sign(SECRET, b)}\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
        for b in bodies
    ]


@dataclass
class LoadResult:
    n: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        s = sorted(self.latencies)
        return s[min(int(len(s) * p), len(s) - 1)] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0


async def read_answer(reader: asyncio.StreamReader) -> bool:
    """Read one HTTP/1.1 answer (head + ``Content-Length`` body); True when it is a 200 with a JSON-RPC result."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200") and b'"result"' in body


async def _connection(port: int, requests: list[bytes], cursor: list[int], lat: list[float], errs: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            i = cursor[0]
            if i >= len(requests):
                return
            cursor[0] = i + 1
            t0 = time.perf_counter()
            writer.write(requests[i])
            ok = await read_answer(reader)
            lat.append(time.perf_counter() - t0)
            if not ok:
                errs[0] += 1
    finally:
        writer.close()


def run_load(requests: list[bytes], port: int, concurrency: int) -> LoadResult:
    """Send ``requests`` over ``concurrency`` keep-alive connections; returns rate and latencies."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass

    async def main() -> LoadResult:
        cursor = [0]
        lat: list[float] = []
        errs = [0]
        t0 = time.perf_counter()
        await asyncio.gather(*(_connection(port, requests, cursor, lat, errs) for _ in range(concurrency)))
        return LoadResult(len(requests), time.perf_counter() - t0, lat, errs[0])

    return asyncio.run(main())


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [" | ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


@contextmanager
def fresh_database(kind: str, label: str) -> Iterator[str]:
    """A fresh database URL (SQLite file in a temp dir, or a new PostgreSQL database), removed after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mcom-bench-db-") as d:
            yield f"sqlite:///{d}/bench.sqlite3"
        return
    import psycopg

    name = f"mcom_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------- interleaved rounds


@dataclass
class Measure:
    """One timed run: its rate (higher is better: msgs/s, rows/s …) and a short note (latency …)."""

    rate: float
    note: str = ""


Run = Any  # Callable[[], Measure | float]


def _measure(fn: Run) -> Measure:
    out = fn()
    return out if isinstance(out, Measure) else Measure(float(out))


@dataclass
class Rounds:
    """What :func:`interleaved` measured: per round the baseline and each variant."""

    unit: str
    baseline_name: str
    names: list[str]
    rows: list[tuple[Measure, dict[str, Measure]]]

    def ratios(self, name: str) -> list[float]:
        return [m[name].rate / b.rate if b.rate else 0.0 for b, m in self.rows]

    def median_ratio(self, name: str) -> float:
        return statistics.median(self.ratios(name))

    def median_rate(self, name: str | None = None) -> float:
        if name is None:
            return statistics.median(b.rate for b, _ in self.rows)
        return statistics.median(m[name].rate for _, m in self.rows)

    def report(self) -> str:
        lines = []
        for i, (b, ms) in enumerate(self.rows, 1):
            cells = [f"B {b.rate:,.0f}" + (f" ({b.note})" if b.note else "")]
            cells += [f"{n}: {m.rate:,.0f}" + (f" ({m.note})" if m.note else "") + f" = {m.rate / b.rate:.2f}"
                      for n, m in ms.items()]
            lines.append(f"  round {i}: " + " | ".join(cells))
        rows = [[self.baseline_name, f"{self.median_rate():,.0f}", "1.00", ""]]
        rows += [[n, f"{self.median_rate(n):,.0f}", f"{self.median_ratio(n):.2f}",
                  ", ".join(f"{r:.2f}" for r in self.ratios(n))] for n in self.names]
        return "\n".join([*lines, "", table(["run", f"median {self.unit}", "median ratio", "ratios per round"], rows)])


def interleaved(rounds: int, baseline: Run, variants: dict[str, Run], *, unit: str = "msgs/s",
                baseline_name: str = "baseline", verbose: bool = True) -> Rounds:
    """Run ``baseline`` and the ``variants`` alternately, ``rounds`` times (B M B M …; with several
    variants B M1 M2 B M1 M2 …), so that load drift on a shared machine hits both sides alike.

    Each run returns a :class:`Measure` (or a bare rate). The ratio of a variant is taken against
    the baseline of the same round; :meth:`Rounds.report` prints every pair and the median ratio.
    """
    out = Rounds(unit, baseline_name, list(variants), [])
    for i in range(rounds):
        b = _measure(baseline)
        if verbose:
            print(f"[round {i + 1}/{rounds}] {baseline_name}: {b.rate:,.0f} {unit} {b.note}", file=sys.stderr, flush=True)
        ms: dict[str, Measure] = {}
        for name, fn in variants.items():
            ms[name] = m = _measure(fn)
            if verbose:
                print(f"[round {i + 1}/{rounds}] {name}: {m.rate:,.0f} {unit} {m.note} (ratio {m.rate / b.rate:.2f})",
                      file=sys.stderr, flush=True)
        out.rows.append((b, ms))
    return out
