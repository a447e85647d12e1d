"""Killing a real worker process mid-batch loses no message: after restarts, each message took
effect exactly once (the handler's effect and the status update commit together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from mcom.service_bus import inbox
from mcom.service_bus.models import LoggedMessage

pytestmark = pytest.mark.django_db(transaction=True)

TESTS_DIR = Path(__file__).resolve().parents[1]


def _db_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(Path(s["NAME"]).resolve())  # absolute: sqlite:////abs/path
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        MCOM_DB__URL=_db_url(),
        MCOM_QUEUE__LEASE_SECONDS="2",
        MCOM_QUEUE__BATCH_SIZE="10",
        MCOM_TEST_HANDLERS="service_bus.bus_handlers",
        PYTHONPATH=os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "mcom.cli.main", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_killing_a_worker_mid_batch_loses_nothing_and_duplicates_nothing(effects: Any) -> None:
    n = 40
    ids = [inbox.store_inbound(effects.COUNT, {"entity": f"e{i % 4}", "n": i, "sleep": 0.05}).pk for i in range(n)]
    proc = _spawn("oms:queue:process", "--max-seconds", "60")
    deadline = time.monotonic() + 60
    while len(effects.effects()) < 6:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert LoggedMessage.objects.filter(status="processing").exists()  # it died holding a claimed batch
    assert LoggedMessage.objects.exclude(status="complete").exists()

    deadline = time.monotonic() + 90
    while LoggedMessage.objects.exclude(status="complete").exists():
        assert time.monotonic() < deadline, list(LoggedMessage.objects.values_list("id", "status", "last_error"))
        out, _ = _spawn("oms:queue:process", "--max-seconds", "60").communicate(timeout=90)
        time.sleep(0.3)  # leases of the killed worker expire after 2 s

    counted = [e[0] for e in effects.effects()]
    assert sorted(counted) == sorted(ids)  # every message took effect, none twice
    for key in {f"e{i}" for i in range(4)}:
        ns = [e[2] for e in effects.effects() if e[1] == key]
        assert ns == sorted(ns)  # and per-entity order survived the crash


def test_sigterm_stops_a_worker_cleanly_between_messages(effects: Any) -> None:
    for i in range(30):
        inbox.store_inbound(effects.COUNT, {"entity": f"e{i}", "n": i, "sleep": 0.05})
    proc = _spawn("oms:queue:process", "--max-seconds", "60")
    deadline = time.monotonic() + 60
    while len(effects.effects()) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    statuses = set(LoggedMessage.objects.values_list("status", flat=True))
    assert "processing" not in statuses  # unprocessed claims were given back
    assert LoggedMessage.objects.filter(status="complete").count() == len(effects.effects())
