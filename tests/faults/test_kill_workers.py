"""kill -9 of a worker mid-batch, in a loop, while deliveries and order exports flow — on
``cron:run --loop`` (the worker ``serve`` runs) and on ``oms:queue:process``. Counted: each inbound
message applied once, each order created once at the sandbox, re-sends per kill (today a killed
worker re-sends at most the requests it had in flight: with ``send_concurrency = 1``, ≤ 1 per kill,
because every send is recorded before the next starts). A killed cron worker's job locks expire with
the lease, so the next worker resumes within seconds. (Concurrency > 1 under kill -9:
``test_concurrent_send.py``.)"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from tests.sales.conftest import PlaceOrder
from tests.service_bus import bus_handlers

from mcom.commerce.models import Order
from mcom.sales import jobs
from mcom.service_bus import cron, inbox, methods, registry
from mcom.service_bus.models import CronJobState, LoggedMessage

from .conftest import Procs, applied_once, child_env, rounds, wait_for

SEQUENTIAL = {"MCOM_QUEUE__SEND_CONCURRENCY": "1"}


def creates_at_sandbox(api: Any) -> list[str]:
    entries = api.journal(method=methods.ORDER_CREATE, direction="incoming", limit=100_000)
    return [str(((e.get("payload") or {}).get("params") or {}).get("order", {}).get("id"))
            for e in entries if e.get("status") == "SUCCESS"]


def store_counted(n: int, start: int) -> list[int]:
    return [inbox.store_inbound(bus_handlers.COUNT, {"entity": f"e{i % 4}", "n": i, "sleep": 0.02}).pk
            for i in range(start, start + n)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", [("cron:run", "--loop"), ("oms:queue:process", "--max-seconds", "120")])
def test_worker_killed_mid_batch_in_a_loop_loses_nothing_and_creates_each_order_once(
        wired: Any, place: PlaceOrder, effects: Any, procs: Procs, command: tuple[str, ...]) -> None:
    api = wired.sandbox.api
    n_rounds = rounds(3, 20)
    orders = [place() for _ in range(rounds(40, 300))]
    if command[0] == "oms:queue:process":
        jobs.export_orders()  # queue them here; oms:queue:process only sends
    api.faults(latency_ms=25)  # a send takes a while: a kill lands between the send and its record
    ids: list[int] = []
    kills = 0
    resume_seconds: list[float] = []
    for r in range(n_rounds):
        ids += store_counted(15, len(ids))
        proc = procs.spawn(*command, env=child_env(**SEQUENTIAL))
        sends_before = len(creates_at_sandbox(api))
        effects_before = len(effects.effects())
        started = time.monotonic()

        def progressed(s: int = sends_before, e: int = effects_before) -> bool:
            nonlocal proc
            if len(creates_at_sandbox(api)) >= s + 3 or len(effects.effects()) >= e + 3:
                return True
            if command[0] != "cron:run" and proc.poll() is not None:  # one-shot, found only leased rows
                proc = procs.spawn(*command, env=child_env(**SEQUENTIAL))
            return False

        wait_for(f"round {r}: the worker makes progress", progressed, 60, proc if command[0] == "cron:run" else None)
        if r:
            resume_seconds.append(time.monotonic() - started)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1

    def done() -> bool:
        open_in = LoggedMessage.objects.filter(pk__in=ids).exclude(status=LoggedMessage.COMPLETE).exists()
        return not open_in and Order.objects.filter(oms_export_state=Order.EXPORT_EXPORTED).count() == len(orders)

    final = procs.spawn(*command, env=child_env(**SEQUENTIAL))

    def finished() -> bool:
        # oms:queue:process is one-shot: it exits when nothing is due, and the rows the killed worker
        # had claimed become due only when their lease expires, so an operator (here: the test) runs it
        # again; cron:run --loop keeps going by itself.
        nonlocal final
        if done():
            return True
        if command[0] != "cron:run" and final.poll() is not None:
            final = procs.spawn(*command, env=child_env(**SEQUENTIAL))
        return False

    wait_for("everything processed after the kills", finished, 120,
             final if command[0] == "cron:run" else None)
    if command[0] == "cron:run":
        final.send_signal(signal.SIGTERM)
        final.wait(timeout=30)
    lost, duplicated = applied_once(ids)
    sent = creates_at_sandbox(api)
    at_oms = [o["id"] for o in api.orders()]
    resent = len(sent) - len(set(sent))
    stuck = LoggedMessage.objects.filter(pk__in=ids).exclude(status=LoggedMessage.COMPLETE).count()
    print(f"{command[0]} kill -9 loop: rounds {n_rounds}, kills {kills}, inbound {len(ids)}, lost {lost}, "
          f"duplicated {duplicated}, orders {len(orders)}, at the OMS {len(set(at_oms))} distinct of {len(at_oms)}, "
          f"creates sent {len(sent)}, re-sent {resent} ({resent / max(kills, 1):.1f} per kill; ≤ 1 allowed), "
          f"stuck {stuck}, resumed after a kill in {max(resume_seconds, default=0):.1f} s at most")
    assert lost == 0
    assert duplicated == 0
    assert stuck == 0
    assert sorted(at_oms) == sorted(o.increment_id for o in orders)
    assert resent <= kills


@pytest.fixture
def slow_job() -> Any:
    seen: list[tuple[Any, Any]] = []

    def job() -> int:
        for _ in range(3):
            state = CronJobState.objects.get(name="test.faults.slow")
            seen.append((state.last_started_at, state.locked_until))
            time.sleep(0.5)
        return len(seen)

    registry.cron_job("test.faults.slow", every_seconds=60)(job)
    yield seen
    registry._registry.cron.pop("test.faults.slow", None)


@pytest.mark.django_db(transaction=True)
def test_a_cron_job_lock_lasts_one_lease_and_a_heartbeat_renews_it(env: Any, slow_job: list[Any]) -> None:
    env(queue__lease_seconds=0.6)
    runs = cron.run_due(force=True, only="test.faults.slow")
    assert runs[0].ok, runs[0].error
    started, first_lock = slow_job[0]
    print(f"cron lock: {(first_lock - started).total_seconds():.2f} s after the start; renewed to "
          f"{[(lock - started).total_seconds().__round__(2) for _, lock in slow_job]}")
    assert first_lock - started == timedelta(seconds=0.6)  # not 15 minutes
    assert slow_job[-1][1] > first_lock  # the heartbeat renewed it while the job ran
    assert CronJobState.objects.get(name="test.faults.slow").locked_until is None


@pytest.mark.django_db(transaction=True)
def test_a_killed_cron_worker_holds_its_jobs_for_one_lease_at_most(effects: Any, procs: Procs) -> None:
    ids = store_counted(400, 0)
    first = procs.spawn("cron:run", "--loop")
    wait_for("the first worker processes", lambda: len(effects.effects()) >= 5, 60, first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    locked = CronJobState.objects.filter(name="service_bus.process_inbound").values_list("locked_until", flat=True)[0]
    killed_at = time.monotonic()
    count = len(effects.effects())
    second = procs.spawn("cron:run", "--loop")
    wait_for("the second worker resumes the job", lambda: len(effects.effects()) > count + 3, 30, second)
    waited = time.monotonic() - killed_at
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    lost, duplicated = applied_once([i for i in ids if LoggedMessage.objects.get(pk=i).status == "complete"])
    print(f"killed cron worker: job locked until {locked}, resumed after {waited:.1f} s (lease 2 s), "
          f"lost {lost}, duplicated {duplicated}")
    assert lost == 0
    assert duplicated == 0
