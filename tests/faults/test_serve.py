"""``mcom serve`` under faults: its cron worker killed with -9 in a loop while deliveries and order
exports flow (it is restarted, nothing is lost, nothing applied twice, each order created once at
the sandbox), and SIGTERM/SIGINT to ``serve`` (every process stops, no child left, no claim left)."""

from __future__ import annotations

import signal
import time
import uuid
from typing import Any

import pytest
from tests.sales.conftest import PlaceOrder

from mcom.commerce.models import Order
from mcom.service_bus import inbox, methods
from mcom.service_bus.models import LoggedMessage
from mcom.testing.live import free_port

from .conftest import (
    Procs,
    alive,
    applied_once,
    child_env,
    children,
    cmdline,
    processes_with,
    rounds,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 10


def cron_child(serve_pid: int) -> int | None:
    for pid in children(serve_pid):
        if "mcom.cli.main worker" in cmdline(pid) and alive(pid):
            return pid
    return None


def store_counted(n: int, start: int, sleep: float = 0.02) -> list[int]:
    return [inbox.store_inbound(bus_handlers_count(), {"entity": f"e{i % 4}", "n": i, "sleep": sleep}).pk
            for i in range(start, start + n)]


def bus_handlers_count() -> str:
    from tests.service_bus import bus_handlers

    return bus_handlers.COUNT


def creates_at_sandbox(api: Any) -> list[str]:
    entries = api.journal(method=methods.ORDER_CREATE, direction="incoming", limit=100_000)
    return [str(((e.get("payload") or {}).get("params") or {}).get("order", {}).get("id"))
            for e in entries if e.get("status") == "SUCCESS"]


def test_serve_restarts_its_killed_cron_worker_and_nothing_is_lost_or_doubled(
        wired: Any, place: PlaceOrder, effects: Any, procs: Procs) -> None:
    n_rounds = rounds(3, 15)
    orders = [place() for _ in range(rounds(30, 200))]
    wired.sandbox.api.faults(latency_ms=15)  # sends take a while: kills land mid-batch
    # one request in flight: every send is recorded before the next, so a kill re-sends at most one
    # (concurrency > 1 under kill -9: test_concurrent_send.py)
    serve = procs.spawn("serve", "--port", str(free_port()),
                        env=child_env(MCOM_QUEUE__BATCH_SIZE=str(BATCH), MCOM_QUEUE__SEND_CONCURRENCY="1"))
    ids: list[int] = []
    kills = 0
    for r in range(n_rounds):
        child = wait_for(f"round {r}: a cron worker runs", lambda: cron_child(serve.pid), 60, serve)
        before = len(effects.effects())
        ids += store_counted(20, len(ids))
        wait_for(f"round {r}: the worker makes progress", lambda b=before: len(effects.effects()) >= b + 3, 60, serve)
        signal_pid(child, signal.SIGKILL)
        kills += 1
        wait_for(f"round {r}: serve restarts its worker", lambda c=child: (cron_child(serve.pid) or c) != c, 60, serve)

    def done() -> bool:
        inbound_open = LoggedMessage.objects.filter(pk__in=ids).exclude(status=LoggedMessage.COMPLETE).exists()
        exported = Order.objects.filter(oms_export_state=Order.EXPORT_EXPORTED).count()
        return not inbound_open and exported == len(orders)

    wait_for("every message processed and every order exported after the kills", done, 120, serve)
    lost, duplicated = applied_once(ids)
    sent = creates_at_sandbox(wired.sandbox.api)
    at_oms = [o["id"] for o in wired.sandbox.api.orders()]
    resent = len(sent) - len(set(sent))
    open_rows = list(LoggedMessage.objects.exclude(status=LoggedMessage.COMPLETE).values_list(
        "direction", "topic", "status", "last_error"))
    stuck = len(open_rows)
    print(f"serve kill -9 loop: rounds {n_rounds}, kills {kills}, inbound {len(ids)}, lost {lost}, "
          f"duplicated {duplicated}, orders {len(orders)}, at the OMS {len(at_oms)} ({len(set(at_oms))} distinct), "
          f"creates sent {len(sent)}, re-sent {resent} (≤ 1 per kill allowed), not complete {stuck} {open_rows}")
    assert lost == 0
    assert duplicated == 0
    assert sorted(at_oms) == sorted(o.increment_id for o in orders)  # each order created once at the OMS
    assert resent <= kills
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0


def signal_pid(pid: int, sig: int) -> None:
    import os

    os.kill(pid, sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_every_process_and_leaves_no_claim(effects: Any, procs: Procs, sig: int) -> None:
    mark = f"fault-{uuid.uuid4().hex}"
    ids = store_counted(200, 0, sleep=0.05)
    serve = procs.spawn("serve", "--port", str(free_port()), env=child_env(MCOM_TEST_FAULT_MARK=mark))
    child = wait_for("a cron worker runs", lambda: cron_child(serve.pid), 60, serve)
    wait_for("the worker is busy", lambda: len(effects.effects()) >= 3, 60, serve)
    started = time.monotonic()
    serve.send_signal(sig)
    code = serve.wait(timeout=30)
    seconds = time.monotonic() - started
    wait_for("the cron child is gone", lambda: not alive(child), 10)
    left = processes_with(mark)
    processing = LoggedMessage.objects.filter(status=LoggedMessage.PROCESSING).count()
    lost, duplicated = applied_once([i for i in ids if LoggedMessage.objects.get(pk=i).status == "complete"])
    print(f"{signal.Signals(sig).name} to serve: stopped in {seconds:.1f} s (exit {code}), processes left "
          f"{len(left)}, claims left {processing}, completed {len(effects.effects())}, lost {lost}, dup {duplicated}")
    assert code == 0
    assert left == []
    assert processing == 0  # in-flight work finished, the rest given back
    assert lost == 0
    assert duplicated == 0
