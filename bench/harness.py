"""Shared plumbing of the worker benchmarks (``latency.py``, ``send.py``, ``scale.py``): the worker
command of this tree, the sandbox OMS in a subprocess (latency switch, journal), the bench outbound
route, enqueue/wait/verify helpers, a steady-rate delivery sender, a private PostgreSQL cluster
(``initdb``/``pg_ctl``) and network namespaces that stand for separate worker hosts.

Also imported by the benchmarked worker processes (``MCOM_TEST_HANDLERS=common,harness``):
:func:`install` declares the outbound method :data:`OUT_METHOD` (kind ``delegate``, no hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import common

#: a method the sandbox accepts and journals verbatim (``Outcome({})``), declared by no module of
#: mcom as outbound: the bench owns its route
OUT_METHOD = "magento.logistics.warehouse_management.lines_shipped"
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-client-secret"  # noqa: S105 - a throw-away sandbox credential
HANDLERS = "common,harness"


def install() -> None:
    """Declare :data:`OUT_METHOD` (called at app-ready in every benchmarked process)."""
    from mcom.service_bus import registry
    from mcom.service_bus.models import LoggedMessage

    if registry.outbound_route(OUT_METHOD) is None:
        registry.outbound(OUT_METHOD, module="service_bus", kind=LoggedMessage.KIND_DELEGATE)


# ------------------------------------------------------------------------ commands of this tree


def mcom_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcom.cli.main", *args]


def worker_cmd(given: str | None) -> list[str]:
    """``--worker-cmd`` split (e.g. ``"worker --only outbound"``), default ``mcom worker``."""
    return shlex.split(given) if given else ["worker"]


def write_send_concurrency(root: Path, concurrency: int) -> None:
    """Write ``[queue] send_concurrency`` into ``root``'s etc/env.toml (checked by loading the file in a
    subprocess: a config that refuses it stops the run)."""
    path = root / "etc" / "env.toml"
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(before + f"\n[queue]\nsend_concurrency = {int(concurrency)}\n", encoding="utf-8")
    code = ("import sys; from pathlib import Path; from mcom import envconfig;"
            "print(envconfig.load(Path(sys.argv[1]), {}).queue.send_concurrency)")
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False)
    if p.returncode or p.stdout.strip() != str(int(concurrency)):
        raise SystemExit(f"[queue] send_concurrency = {concurrency} not taken: {p.stderr.strip()[-400:]}")


# ------------------------------------------------------------------------------------ sandbox


class Sandbox:
    """The sandbox OMS (``mcom.sandbox.server.run``) in a subprocess, on ``host``, its own SQLite file."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = common.free_port()
        self.db = root / "sandbox.sqlite3"
        self.url = f"http://{host}:{self.port}/"
        code = ("import logging; logging.disable(logging.INFO);"
                "from mcom.sandbox.server import run;"
                f"run({host!r}, {self.port}, {str(self.db)!r}, {CLIENT_ID!r}, {CLIENT_SECRET!r})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the sandbox did not start")
            try:
                with socket.create_connection((host, self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)

    def latency(self, ms: int) -> None:
        import httpx

        r = httpx.post(f"{self.url}_sandbox/api/faults", json={"latency_ms": ms}, timeout=10)
        r.raise_for_status()
        if r.json().get("latency_ms") != ms:
            raise SystemExit(f"the sandbox did not take latency_ms={ms}: {r.text}")

    def last_journal_id(self) -> int:
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as c:
            return int(c.execute("SELECT COALESCE(MAX(id), 0) FROM journal").fetchone()[0])

    def journal(self, after_id: int, method: str = OUT_METHOD) -> list[tuple[int, str, str, str]]:
        """(journal id, message id, status, payload) of the calls of ``method`` received after ``after_id``."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as c:
            rows = c.execute("SELECT id, message_id, status, payload FROM journal WHERE id > ? AND method = ?"
                             " AND direction = 'incoming' ORDER BY id", (after_id, method)).fetchall()
        return [(int(a), str(b), str(s), str(p)) for a, b, s, p in rows]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def oms_env(sandbox_url: str) -> dict[str, str]:
    """The ``[service_bus]`` settings that point a worker at the sandbox."""
    return {
        "MCOM_SERVICE_BUS__URL": sandbox_url,
        "MCOM_SERVICE_BUS__OAUTH_SERVER_URL": sandbox_url,
        "MCOM_SERVICE_BUS__OAUTH_CLIENT_ID": CLIENT_ID,
        "MCOM_SERVICE_BUS__OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "MCOM_SERVICE_BUS__APPLICATION_BASE_URL": "http://127.0.0.1:9",
    }


# ------------------------------------------------------------------------- outbound workload


def params_of(entity: int, seq: int, run: str, size: int = 600) -> dict[str, Any]:
    """The params of message ``seq`` of entity ``entity`` (padded to about ``size`` bytes)."""
    return {"bench": {"run": run, "entity": f"e{entity:05d}", "seq": seq,
                      "lines": [{"id": f"{entity}-{seq}-{k}", "sku": f"SKU-{k:05d}", "qty": 1} for k in range(3)],
                      "note": "x" * max(size - 200, 0)}}


def workload(n: int, entities: int, run: str) -> list[tuple[str, dict[str, Any]]]:
    """``n`` (entity key, params), round-robin over ``entities`` (message ``seq`` of every entity before ``seq + 1``)."""
    return [(f"bench:e{i % entities:05d}", params_of(i % entities, i // entities, run)) for i in range(n)]


def setup_django(env: dict[str, str]) -> None:
    """Configure this process for ``env``'s instance (Django set up once; later calls only check)."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)


def enqueue(items: list[tuple[str, dict[str, Any]]]) -> tuple[list[int], float]:
    """Log ``items`` as outbound :data:`OUT_METHOD` messages in one transaction (through
    ``outbox.enqueue_many``); returns their log ids and the wall-clock time of the commit."""
    from django.db import transaction

    from mcom.service_bus import outbox

    install()
    with transaction.atomic():
        ids = outbox.enqueue_many(OUT_METHOD, [outbox.OutboxItem(params=p, entity_key=k) for k, p in items])
    return ids, time.time()


def _utc(value: Any) -> float:
    """A stored datetime (aware, or naive UTC / ISO text on SQLite) as a POSIX timestamp."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


@dataclass
class Drained:
    seconds: float  # from the commit of the enqueue to the last processed_at
    statuses: dict[str, int]
    message_ids: list[str] = field(default_factory=list)


def wait_drained(ids: list[int], committed: float, timeout: float) -> Drained:
    """Poll until every row of ``ids`` is finished (or nothing moved for ``timeout`` s); the drain time
    comes from the rows' ``processed_at`` (not from the polling)."""
    from django.db import connection

    lo, hi = min(ids), max(ids)
    last, moved = -1, time.monotonic()
    while True:
        with connection.cursor() as cur:
            cur.execute("SELECT status, COUNT(*) FROM mcom_logged_messages_queue WHERE id BETWEEN %s AND %s"
                        " GROUP BY status", [lo, hi])
            statuses = {str(s): int(c) for s, c in cur.fetchall()}
        done = statuses.get("complete", 0) + statuses.get("error", 0) + statuses.get("ignored", 0)
        if done >= len(ids):
            break
        if done != last:
            last, moved = done, time.monotonic()
        elif time.monotonic() - moved > timeout:
            print(f"  stalled: {statuses}", file=sys.stderr)
            break
        time.sleep(0.1)
    with connection.cursor() as cur:
        cur.execute("SELECT MAX(processed_at) FROM mcom_logged_messages_queue WHERE id BETWEEN %s AND %s", [lo, hi])
        end = cur.fetchone()[0]
        cur.execute("SELECT message_id FROM mcom_logged_messages_queue WHERE id BETWEEN %s AND %s ORDER BY id", [lo, hi])
        mids = [str(r[0]) for r in cur.fetchall()]
    seconds = (_utc(end) - committed) if end is not None else float("inf")
    return Drained(seconds, statuses, mids)


def clear_log() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DELETE FROM mcom_logged_messages_queue")
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE mcom_logged_messages_queue")


@dataclass
class Verdict:
    received: int
    missing: int
    duplicates: int
    order_violations: int
    errors: int

    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.order_violations or self.errors)

    def __str__(self) -> str:
        return (f"received {self.received}, missing {self.missing}, duplicates {self.duplicates}, "
                f"per-entity order violations {self.order_violations}, sandbox errors {self.errors}")


def verify(journal: list[tuple[int, str, str, str]], expected_ids: Sequence[str], run: str) -> Verdict:
    """Exactly-once (each expected message id received once, successfully) and per-entity order (the
    ``seq`` of each entity increases along the sandbox's journal) for the calls of run ``run``."""
    counts: dict[str, int] = {}
    last_seq: dict[str, int] = {}
    violations = errors = 0
    for _, mid, status, payload in journal:
        try:
            bench = json.loads(payload)["params"]["bench"]
        except (ValueError, KeyError, TypeError):
            continue
        if bench.get("run") != run:
            continue
        if status != "SUCCESS":
            errors += 1
            continue
        counts[mid] = counts.get(mid, 0) + 1
        entity, seq = str(bench["entity"]), int(bench["seq"])
        if counts[mid] == 1:  # a duplicate is counted once, as a duplicate, not as an order violation too
            if seq <= last_seq.get(entity, -1):
                violations += 1
            last_seq[entity] = max(seq, last_seq.get(entity, -1))
    expected = set(expected_ids)
    return Verdict(received=sum(counts.values()), missing=sum(1 for m in expected if m not in counts),
                   duplicates=sum(c - 1 for c in counts.values() if c > 1), order_violations=violations,
                   errors=errors)


# ---------------------------------------------------------------------------------- processes


def start_proc(cmd: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, env=env, cwd=str(common.REPO), start_new_session=True, stdout=out,
                            stderr=subprocess.STDOUT)


def stop_proc(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM to the process group (the worker finishes the message in hand), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit in the block (Ctrl-C already raises KeyboardInterrupt): cleanups run."""
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(int(len(s) * p), len(s) - 1)]


# -------------------------------------------------------------------- steady-rate deliveries


@dataclass
class Sent:
    message_ids: list[str]
    sent_at: dict[str, float]  # wall clock just before the request was written
    ack_s: list[float]  # request → response, seconds
    errors: int


def _message_id(body: bytes) -> str:
    return str(json.loads(body)["id"])


def send_steady(bodies: list[bytes], port: int, rate: float, connections: int = 8) -> Sent:
    """Send signed deliveries open-loop at ``rate``/s over a pool of keep-alive connections (a late
    answer delays no later send while a connection is free)."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    requests = common.raw_requests(bodies, port)
    ids = [_message_id(b) for b in bodies]
    sent_at: dict[str, float] = {}
    ack: list[float] = []
    errors = [0]

    async def one(pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]], i: int) -> None:
        reader, writer = await pool.get()
        try:
            t0 = time.perf_counter()
            sent_at[ids[i]] = time.time()
            writer.write(requests[i])
            ok = await common.read_answer(reader)
            ack.append(time.perf_counter() - t0)
            if not ok:
                errors[0] += 1
        finally:
            pool.put_nowait((reader, writer))

    async def main() -> None:
        pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(connections):
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        tasks = []
        start = time.perf_counter()
        for i in range(len(requests)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(pool, i)))
        await asyncio.gather(*tasks)
        while not pool.empty():
            _, w = pool.get_nowait()
            w.close()

    asyncio.run(main())
    return Sent(ids, sent_at, ack, errors[0])


# ------------------------------------------------------------- private PostgreSQL cluster


class PgCluster:
    """A throw-away PostgreSQL cluster (``initdb``/``pg_ctl`` from /usr/lib/postgresql/*/bin) on a free
    port, listening on ``listen`` only (never the shared server); trust auth for ``allow`` (CIDR)."""

    def __init__(self, listen: str, allow: str, dbname: str = "mcombench") -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                      if Path(p).parent.name.isdigit() else 0)
        if not bins:
            raise SystemExit("PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="mcomb-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.listen, self.allow, self.dbname = listen, allow, dbname
        self.port = common.free_port()
        self.url = f"postgresql://postgres@{listen}:{self.port}/{dbname}"
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if p.returncode:
            raise SystemExit(f"{args[0]} failed: {p.stderr.strip()[-800:]}")

    def start(self) -> PgCluster:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        hba = self.data / "pg_hba.conf"
        with open(hba, "a", encoding="utf-8") as f:
            f.write(f"\nhost all all {self.allow} trust\n")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses={self.listen} -c fsync=off "
                  "-c max_connections=200", "start")
        self.started = True
        import psycopg

        with psycopg.connect(f"postgresql://postgres@{self.listen}:{self.port}/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.dbname}"')
        return self

    @classmethod
    def remove_stale(cls) -> None:
        """Stop and delete the clusters a crashed run of this harness left behind (/tmp/mcomb-pg-*)."""
        for d in glob.glob("/tmp/mcomb-pg-*"):
            stale = cls.__new__(cls)
            bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
            if not bins:
                return
            stale.bin, stale.dir, stale.data = Path(bins[-1]), Path(d), Path(d) / "data"
            stale.started = (stale.data / "postmaster.pid").exists()
            stale.stop()

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(SystemExit):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------ network namespaces


class Hosts:
    """``k`` network namespaces ``mcomb-<n>`` on one bridge: each a worker "host" with its own address
    ``<prefix>.<10+n>``; the bridge (our side) is ``<prefix>.1``. Everything is removed by
    :meth:`remove` (also of a run that crashed before: same names)."""

    BRIDGE = "mcombr0"
    MAX = 8
    #: the bridge address by name inside the hosts (``/etc/netns/<name>/hosts``, which ``ip netns exec``
    #: mounts over /etc/hosts): the service bus URL must name a region or a development host, not an IP
    SERVER_NAME = "oms.mcomb.internal"

    def __init__(self, k: int, prefix: str = "10.213.0") -> None:
        if not 1 <= k <= self.MAX:
            raise SystemExit(f"1..{self.MAX} hosts")
        self.k, self.prefix = k, prefix
        self.server = f"{prefix}.1"
        self.subnet = f"{prefix}.0/24"

    @staticmethod
    def _ip(*args: str, check: bool = True) -> None:
        p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
        if check and p.returncode:
            raise SystemExit(f"ip {' '.join(args)}: {p.stderr.strip()}")

    def name(self, n: int) -> str:
        return f"mcomb-{n}"

    def address(self, n: int) -> str:
        return f"{self.prefix}.{10 + n}"

    def create(self) -> Hosts:
        self.remove()
        self._ip("link", "add", self.BRIDGE, "type", "bridge")
        self._ip("addr", "add", f"{self.server}/24", "dev", self.BRIDGE)
        self._ip("link", "set", self.BRIDGE, "up")
        for n in range(1, self.k + 1):
            ns, host_end, ns_end = self.name(n), f"mcombh{n}", f"mcombn{n}"
            self._ip("netns", "add", ns)
            self._ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            self._ip("link", "set", host_end, "master", self.BRIDGE)
            self._ip("link", "set", host_end, "up")
            self._ip("link", "set", ns_end, "netns", ns)
            self._ip("-n", ns, "addr", "add", f"{self.address(n)}/24", "dev", ns_end)
            self._ip("-n", ns, "link", "set", ns_end, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{self.server} {self.SERVER_NAME}\n", encoding="utf-8")
        return self

    def url(self, port: int) -> str:
        """The URL of a server on the bridge address, as the hosts name it."""
        return f"http://{self.SERVER_NAME}:{port}/"

    def exec_cmd(self, n: int, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name(n), *cmd]

    def remove(self) -> None:
        for n in range(1, self.MAX + 1):
            self._ip("link", "del", f"mcombh{n}", check=False)
            self._ip("netns", "del", self.name(n), check=False)
            shutil.rmtree(Path("/etc/netns") / self.name(n), ignore_errors=True)
        self._ip("link", "del", self.BRIDGE, check=False)
