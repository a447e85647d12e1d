"""A private PostgreSQL cluster (``initdb``/``pg_ctl`` on a free port in a temp dir — never the shared
server) restarted under load: ``mcom serve``'s worker waits the outage out and resumes by itself;
every acknowledged (committed) inbound message is applied exactly once; the log says once that the
database went away and once that it is back, without the misleading setup hint."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from mcom import instance
from mcom.testing.live import free_port

from .conftest import TESTS_DIR, Procs, child_env, rounds, wait_for

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mcom-fault-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.bin = Path(BIN[-1])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/mcomfault"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mcomfault")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def query(self, sql: str) -> Any:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if not BIN or not shutil.which("runuser") and os.geteuid() == 0:
        pytest.skip("PostgreSQL server binaries are not installed")
    c = Cluster()
    try:
        c.init()
        yield c
    finally:
        c.stop("immediate")
        shutil.rmtree(c.dir, ignore_errors=True)


pytestmark = pytest.mark.skipif(
    "sqlite" in os.environ.get("MCOM_DB__URL", "sqlite"), reason="restarts a private PostgreSQL cluster: "
    "runs in the PostgreSQL session of the suite")


def test_a_database_restart_under_load_is_waited_out_and_nothing_acknowledged_is_lost(
        cluster: Cluster, procs: Procs) -> None:
    env = child_env(MCOM_DB__URL=cluster.url, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "mcom.cli.main", "setup:upgrade", "--skip-register"], env=env,
                   check=True, capture_output=True, timeout=300)
    total = rounds(1500, 10_000)
    restarts = rounds(2, 6)
    loader = subprocess.Popen([sys.executable, "-m", "faults.pg_loader", str(total)], env=env,
                              stdout=subprocess.PIPE, text=True)
    procs.started.append(loader)  # type: ignore[arg-type]
    acked: list[int] = []
    reader = threading.Thread(target=lambda: [acked.append(int(ln.split()[1])) for ln in loader.stdout  # type: ignore[union-attr]
                                              if ln.startswith("ack ")], daemon=True)
    reader.start()
    log_file = instance.log_file()
    log_start = log_file.stat().st_size if log_file.exists() else 0
    serve = procs.spawn("serve", "--port", str(free_port()), env=env)

    def applied() -> int:
        try:
            return int(cluster.query("SELECT count(*) FROM bus_test_effect") or 0)
        except Exception:  # noqa: BLE001 - the cluster is restarting
            return 0

    for r in range(restarts):
        wait_for(f"restart {r}: processing before it", lambda a=applied(): applied() > a + 20, 90, serve)
        cluster.stop("fast")  # terminates every connection, like a restart of the server
        time.sleep(2.0)
        cluster.start()
    loader.wait(timeout=300)
    reader.join(timeout=10)

    seen: list[Any] = []

    def all_done() -> bool:
        import psycopg

        try:
            with psycopg.connect(cluster.url, connect_timeout=5) as conn:
                seen[:] = conn.execute(
                    "SELECT status, count(*), max(last_error) FROM mcom_logged_messages_queue "
                    "WHERE direction = 'in' AND status <> 'complete' GROUP BY status").fetchall()
        except Exception:  # noqa: BLE001
            return False
        return not seen

    try:
        wait_for("every stored message processed after the restarts, with nobody restarting the worker", all_done,
                 180, serve)
    except BaseException:
        print("open messages:", seen)
        raise
    import psycopg

    with psycopg.connect(cluster.url) as conn:
        counts = dict(conn.execute("SELECT log_id, count(*) FROM bus_test_effect GROUP BY log_id").fetchall())
        stored = conn.execute("SELECT count(*) FROM mcom_logged_messages_queue WHERE direction = 'in'").fetchone()[0]  # type: ignore[index]
    lost = sum(1 for i in acked if i not in counts)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=60) == 0
    text = log_file.read_text(encoding="utf-8", errors="replace")[log_start:] if log_file.exists() else ""
    outages = text.count("database unavailable")
    recoveries = text.count("database reachable again")
    print(f"database restarts: {restarts}, acknowledged {len(acked)} (stored {stored}), applied {len(counts)}, "
          f"lost {lost}, duplicated {duplicated}, outage lines {outages}, recovery lines {recoveries}")
    assert len(acked) == total
    assert lost == 0
    assert duplicated == 0
    assert len(counts) == stored
    assert outages >= 1
    assert recoveries >= 1
    assert "did you run" not in text
    assert connection.vendor == "postgresql"
