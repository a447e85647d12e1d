"""The fault suite: real processes (``mcom serve``, ``cron:run --loop``, ``oms:queue:process``) killed,
signalled and cut off from their database or the OMS while work flows; every test counts effects
and prints what it counted.

Bounded by default (a few rounds, seconds each); ``MCOM_TEST_FAULTS_LONG=1`` runs the long loops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from tests.sales.conftest import place, shop  # noqa: F401 - fixtures shared with the sales tests
from tests.service_bus import bus_handlers
from tests.service_bus.conftest import _fresh_client_and_writer, effects, routes  # noqa: F401 - fixtures

TESTS_DIR = Path(__file__).resolve().parents[1]
LONG = os.environ.get("MCOM_TEST_FAULTS_LONG", "") not in ("", "0")


def rounds(default: int, long: int) -> int:
    return long if LONG else default


def db_url() -> str:
    """The URL of the test database, for subprocesses."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(Path(s["NAME"]).resolve())
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MCOM_DB__URL=db_url(),
        MCOM_QUEUE__LEASE_SECONDS="2",
        MCOM_QUEUE__BATCH_SIZE="10",
        MCOM_QUEUE__BACKOFF_BASE_SECONDS="0",
        MCOM_CRON__INTERVAL_SECONDS="0.2",
        MCOM_TEST_HANDLERS="service_bus.bus_handlers",
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


class Procs:
    """Processes started by a test; every one still running is killed at the end (with its children)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "mcom.cli.main", *args], env=env or child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.started:
            for pid in descendants(proc.pid):
                _kill(pid)
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.cleanup()


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="utf-8") as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for c in children(pid):
        out += [c, *descendants(c)]
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def processes_with(marker: str) -> list[int]:
    """Pids of running processes whose environment names ``marker`` (to find orphans of a test)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if marker.encode() in f.read() and alive(int(name)):
                    found.append(int(name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> Any:
    """Poll ``check()`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"{what}: the process exited ({proc.returncode}) first:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            from mcom.service_bus.models import LoggedMessage

            try:
                rows: Any = list(LoggedMessage.objects.order_by("-id").values_list(
                    "id", "direction", "status", "topic", "last_error")[:5])
            except RuntimeError:  # a test without the Django test database
                rows = "n/a"
            out = ""
            if proc is not None and proc.poll() is None:
                for pid in descendants(proc.pid):
                    _kill(pid)
                proc.kill()
                out = proc.stdout.read().decode(errors="replace")[-3000:] if proc.stdout else ""
            pytest.fail(f"{what}: not within {timeout:g} s; latest messages: {rows}\n{out}")
        time.sleep(0.05)


def applied_once(ids: list[int]) -> tuple[int, int]:
    """(lost, duplicated) among the inbound messages ``ids`` counted by the COUNT handler."""
    counted: dict[int, int] = {}
    for log_id, _, _ in bus_handlers.effects():
        counted[log_id] = counted.get(log_id, 0) + 1
    lost = sum(1 for i in ids if i not in counted)
    duplicated = sum(n - 1 for n in counted.values() if n > 1)
    return lost, duplicated
