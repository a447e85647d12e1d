"""``mcom worker`` as a real process: an insert in another process wakes it across processes
(NOTIFY on PostgreSQL, the unix datagram of ``var/wake`` on SQLite) although its poll is 60 s;
SIGTERM stops it cleanly (exit 0, no claim left, no process left); ``serve`` starts one worker
child by default and none with ``--no-worker``."""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import pytest
from django.db import connection

from mcom.service_bus import inbox, wake
from mcom.service_bus.models import LoggedMessage
from mcom.testing.live import free_port

from .conftest import Procs, alive, applied_once, child_env, children, cmdline, processes_with, wait_for
from .test_serve import bus_handlers_count, store_counted

pytestmark = pytest.mark.django_db(transaction=True)


def listening(pid: int) -> bool:
    """The worker's wake-up listener is up (PostgreSQL: a session LISTENing; SQLite: its socket)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE query = %s", [f"LISTEN {wake.CHANNEL}"])
            return bool(cur.fetchone()[0])
    return (wake.wake_dir() / str(pid)).exists()


def test_an_insert_in_another_process_wakes_the_worker_before_its_poll(effects: Any, procs: Procs) -> None:
    proc = procs.spawn("worker", "--only", "inbound", env=child_env(MCOM_WORKER__POLL_SECONDS="60"))
    wait_for("the worker listens for wake-ups", lambda: listening(proc.pid), 60, proc)
    first = inbox.store_inbound(bus_handlers_count(), {"entity": "a", "n": 1}).pk
    wait_for("the first message is processed", lambda: len(effects.effects()) == 1, 30, proc)
    time.sleep(0.5)  # the lane has found nothing more and waits (60 s poll) now
    wake.forget_peers()
    started = time.monotonic()
    second = inbox.store_inbound(bus_handlers_count(), {"entity": "b", "n": 2}).pk
    wait_for("the woken worker processed the second message (the poll is 60 s)",
             lambda: len(effects.effects()) == 2, 30, proc)
    print(f"cross-process wake-up ({connection.vendor}): processed {time.monotonic() - started:.2f} s after the insert")
    assert [e[0] for e in effects.effects()] == [first, second]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_worker_with_no_claim_and_no_process_left(effects: Any, procs: Procs, sig: int) -> None:
    mark = f"fault-{uuid.uuid4().hex}"
    ids = store_counted(200, 0, sleep=0.05)
    proc = procs.spawn("worker", env=child_env(MCOM_TEST_FAULT_MARK=mark))
    wait_for("the worker is busy", lambda: len(effects.effects()) >= 3, 60, proc)
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    processing = LoggedMessage.objects.filter(status=LoggedMessage.PROCESSING).count()
    completed = [i for i in ids if LoggedMessage.objects.get(pk=i).status == LoggedMessage.COMPLETE]
    lost, duplicated = applied_once(completed)
    print(f"{signal.Signals(sig).name} to mcom worker: exit {code}, claims left {processing}, "
          f"completed {len(completed)}, lost {lost}, dup {duplicated}")
    assert code == 0, out
    assert "mcom worker stopped." in out
    assert processes_with(mark) == []
    assert processing == 0
    assert lost == 0
    assert duplicated == 0
    assert len(effects.effects()) == len(completed)  # nothing applied that is not recorded complete


def worker_children(pid: int) -> list[int]:
    return [c for c in children(pid) if "mcom.cli.main worker" in cmdline(c) and alive(c)]


@pytest.mark.parametrize(("args", "expected"), [((), 1), (("--workers", "2"), 2), (("--no-worker",), 0),
                                                 (("--no-cron",), 0)])
def test_serve_starts_the_message_workers_it_is_asked_for(procs: Procs, args: tuple[str, ...], expected: int) -> None:
    port = free_port()
    serve = procs.spawn("serve", "--port", str(port), *args)
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("serve answers", up, 60, serve)
    if expected:
        wait_for(f"{expected} worker child(ren) run", lambda: len(worker_children(serve.pid)) == expected, 60, serve)
    time.sleep(1.0)  # a worker that was not asked for would have been started by now
    assert len(worker_children(serve.pid)) == expected
    kids = worker_children(serve.pid)
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0
    wait_for("the worker children are gone", lambda: not any(alive(k) for k in kids), 10)
