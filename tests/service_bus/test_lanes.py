"""``mcom worker``'s lanes in-process over the real test database: an insert wakes a waiting lane
without the poll (the wake-up path's counter moves and the message is processed although
``[worker] poll_seconds`` is 60), inbound goes on while the outbound lane is blocked in a send,
and a stop ends every lane with no claim left."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

from mcom.service_bus import inbox, lanes, outbox, wake, worker
from mcom.service_bus import log as message_log
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.rows import InboundRow

from .bus_handlers import COUNT, OUT_EVENT

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30.0  # generous: far below the 60 s poll, far above any real wake-up


def wait_until(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.02)


@pytest.fixture
def slow_poll(env: Any) -> Any:
    return env(worker__poll_seconds=60, cron__interval_seconds=60, queue__backoff_base_seconds=0)


@pytest.fixture
def running() -> Iterator[Callable[..., lanes.Worker]]:
    started: list[lanes.Worker] = []

    def start(*only: str) -> lanes.Worker:
        w = lanes.Worker(only or lanes.LANES).start()
        started.append(w)
        if w.listener is not None:
            assert w.listener.ready.wait(WAIT)
        return w

    yield start
    for w in started:
        assert w.stop(timeout=WAIT)
    worker.clear_stop()


def idle(w: lanes.Worker, name: str) -> None:
    """Wait until lane ``name`` finished a pass (it then sleeps up to the poll)."""
    lane = w.lane(name)
    wait_until(f"{name} lane made a first pass", lambda: lane.passes >= 1)


def _status(pk: int) -> str:
    return str(LoggedMessage.objects.get(pk=pk).status)


def test_a_delivery_stored_by_the_group_commit_store_wakes_the_waiting_inbound_lane(
        slow_poll: Any, effects: Any, running: Callable[..., lanes.Worker]) -> None:
    w = running(lanes.INBOUND)
    idle(w, lanes.INBOUND)
    time.sleep(0.2)  # the lane is in its 60 s wait now
    passes, woken = w.lane(lanes.INBOUND).passes, wake.waiter(wake.IN).woken
    store = message_log.store_for(dict(connections["default"].settings_dict))  # the ingest path's own connection
    mid = str(uuid.uuid4())
    try:
        store.write([InboundRow(COUNT, mid, "test:a", f'{{"jsonrpc":"2.0","id":"{mid}","method":"{COUNT}",'
                                                      '"params":{"entity":"a","n":1}}')])
    finally:
        store.close()
    pk = LoggedMessage.objects.get(message_id=mid).pk
    wait_until("the woken lane processed the delivery", lambda: _status(pk) == LoggedMessage.COMPLETE)
    assert wake.waiter(wake.IN).woken > woken  # set by NOTIFY (PostgreSQL) / after commit (SQLite), not the poll
    assert w.lane(lanes.INBOUND).passes > passes
    assert [e[0] for e in effects.effects()] == [pk]


def test_an_outbox_insert_wakes_the_waiting_outbound_lane(
        slow_poll: Any, bus: Any, routes: Any, running: Callable[..., lanes.Worker]) -> None:
    w = running(lanes.OUTBOUND)
    idle(w, lanes.OUTBOUND)
    time.sleep(0.2)
    woken = wake.waiter(wake.OUT).woken
    msg = outbox.enqueue(OUT_EVENT, {"n": 1}, entity_key="test:o")  # autocommit: committed now
    wait_until("the woken lane sent the message", lambda: _status(msg.pk) == LoggedMessage.COMPLETE)
    assert wake.waiter(wake.OUT).woken > woken
    assert len(bus.rpc_requests()) == 1


def test_inbound_is_processed_while_the_outbound_lane_is_blocked_in_a_send(
        slow_poll: Any, bus: Any, effects: Any, running: Callable[..., lanes.Worker]) -> None:
    bus.open.clear()  # every send blocks until the test opens the bus again
    w = running(lanes.INBOUND, lanes.OUTBOUND)
    sent = outbox.enqueue(OUT_EVENT, {"n": 1}, entity_key="test:o")
    assert bus.held.wait(WAIT)  # the outbound lane is inside a send now
    ids = [inbox.store_inbound(COUNT, {"entity": f"e{i}", "n": i}).pk for i in range(5)]
    try:
        wait_until("inbound processed beside the blocked send",
                   lambda: LoggedMessage.objects.filter(pk__in=ids, status=LoggedMessage.COMPLETE).count() == 5)
        assert _status(sent.pk) == LoggedMessage.PROCESSING  # still in the blocked send
    finally:
        bus.open.set()
    wait_until("the send completes once the bus answers", lambda: _status(sent.pk) == LoggedMessage.COMPLETE)
    assert sorted(e[0] for e in effects.effects()) == sorted(ids)
    assert w.alive()


def test_stop_ends_every_lane_and_gives_back_the_claims(
        slow_poll: Any, effects: Any, running: Callable[..., lanes.Worker]) -> None:
    ids = [inbox.store_inbound(COUNT, {"entity": f"e{i % 3}", "n": i, "sleep": 0.05}).pk for i in range(60)]
    w = running()
    wait_until("the inbound lane is busy", lambda: len(effects.effects()) >= 3)
    assert w.stop(timeout=WAIT)
    assert not any(t.is_alive() for t in (lane.thread for lane in w.lanes))
    assert not [t for t in threading.enumerate() if t.name.startswith("mcom-lane-")]
    assert LoggedMessage.objects.filter(status=LoggedMessage.PROCESSING).count() == 0
    done = LoggedMessage.objects.filter(pk__in=ids, status=LoggedMessage.COMPLETE).count()
    assert sorted(e[0] for e in effects.effects()) == sorted(
        LoggedMessage.objects.filter(pk__in=ids, status=LoggedMessage.COMPLETE).values_list("pk", flat=True))
    assert 0 < done < len(ids)


def test_the_cron_lane_leaves_the_message_jobs_to_the_lanes(
        slow_poll: Any, running: Callable[..., lanes.Worker]) -> None:
    from mcom.service_bus.models import CronJobState

    w = running(lanes.CRON)
    idle(w, lanes.CRON)
    ran = set(CronJobState.objects.filter(last_finished_at__isnull=False).values_list("name", flat=True))
    assert "service_bus.prune" in ran
    assert not ran & lanes.LANE_JOBS


def test_the_message_time_limit_holds_in_a_lane_thread(env: Any, effects: Any) -> None:
    env(queue__message_time_limit=0.3, queue__backoff_base_seconds=60)
    pk = inbox.store_inbound(COUNT, {"entity": "slow", "n": 1, "sleep": 1.5}).pk
    done: list[int] = []
    thread = threading.Thread(target=lambda: (done.append(worker.process_inbound()), connections.close_all()))
    thread.start()
    thread.join(WAIT)
    row = LoggedMessage.objects.get(pk=pk)
    assert done == [1]
    assert row.status == LoggedMessage.RETRY
    assert "time limit of 0.3 s exceeded" in row.last_error
    assert effects.effects() == []  # the handler's write rolled back with its savepoint
