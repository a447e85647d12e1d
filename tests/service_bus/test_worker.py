"""The worker: retries with backoff, per-entity order, overlap safety, outbound sending."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from mcom.service_bus import inbox, outbox, registry, sender, worker
from mcom.service_bus.models import LoggedMessage

from .fakebus import FakeBus

pytestmark = pytest.mark.django_db(transaction=True)


def _store(effects: Any, entity: str, n: int, method: str | None = None, **params: Any) -> LoggedMessage:
    return inbox.store_inbound(method or effects.COUNT, {"entity": entity, "n": n, **params})


def test_failing_handler_is_retried_with_backoff_then_parked(effects: Any, env: Any) -> None:
    env(queue__backoff_base_seconds=10, queue__backoff_max_seconds=25, queue__max_attempts=4)
    msg = _store(effects, "o1", 1, method=effects.FAIL, mode="retry")
    delays = []
    for _ in range(3):
        before = timezone.now()
        assert worker.process_inbound() == 1
        msg.refresh_from_db()
        assert msg.status == "retry"
        assert "RetryLater: entity not known yet" in msg.last_error
        delays.append(round((msg.next_attempt_at - before).total_seconds()))
        assert worker.process_inbound() == 0  # not due yet
        LoggedMessage.objects.filter(pk=msg.pk).update(next_attempt_at=timezone.now())
    assert delays == [10, 20, 25]  # exponential, capped by backoff_max_seconds
    assert worker.process_inbound() == 1
    msg.refresh_from_db()
    assert msg.status == "error"
    assert msg.attempts == 4
    assert msg.last_error.startswith("gave up after 4 attempts: RetryLater")


def test_handler_succeeding_on_a_later_attempt(effects: Any, queue_fast: Any) -> None:
    msg = _store(effects, "o1", 1, method=effects.FAIL, mode="retry", succeed_at_attempt=2)
    worker.run_until_idle()
    msg.refresh_from_db()
    assert (msg.status, msg.attempts, msg.last_error) == ("complete", 2, "")


def test_permanent_error_is_parked_at_once(effects: Any, queue_fast: Any) -> None:
    msg = _store(effects, "o1", 1, method=effects.FAIL, mode="permanent")
    worker.run_until_idle()
    msg.refresh_from_db()
    assert (msg.status, msg.attempts) == ("error", 1)
    assert msg.last_error == "PermanentError: this cannot work"


def test_unexpected_exception_is_retried_and_recorded(effects: Any, queue_fast: Any) -> None:
    msg = _store(effects, "o1", 1, method=effects.FAIL, mode="crash")
    worker.run_until_idle()
    msg.refresh_from_db()
    assert (msg.status, msg.attempts) == ("error", 3)
    assert "ZeroDivisionError: handler bug" in msg.last_error


def test_per_entity_order_holds_while_other_entities_proceed(effects: Any, queue_fast: Any) -> None:
    a1 = _store(effects, "A", 1, method=effects.FAIL, mode="permanent")
    a2 = _store(effects, "A", 2)
    b1 = _store(effects, "B", 1)
    a3 = _store(effects, "A", 3)
    b2 = _store(effects, "B", 2)
    worker.run_until_idle()
    status = dict(LoggedMessage.objects.values_list("id", "status"))
    assert status[a1.pk] == "error"
    assert status[a2.pk] == status[a3.pk] == "new"  # held back behind the failed A message
    assert status[b1.pk] == status[b2.pk] == "complete"
    assert [e[1:] for e in effects.effects()] == [("B", 1), ("B", 2)]
    worker.ignore(a1.pk)  # the operator gives up on it: A proceeds, in order
    worker.run_until_idle()
    assert [e[1:] for e in effects.effects()] == [("B", 1), ("B", 2), ("A", 2), ("A", 3)]


def test_retry_later_holds_back_the_entity_until_it_succeeds(effects: Any, env: Any) -> None:
    env(queue__backoff_base_seconds=0.2, queue__max_attempts=5)
    first = _store(effects, "A", 1, method=effects.FAIL, mode="retry", succeed_at_attempt=2)
    second = _store(effects, "A", 2)
    worker.process_inbound()
    assert LoggedMessage.objects.get(pk=second.pk).status == "new"
    LoggedMessage.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    worker.process_inbound()
    assert LoggedMessage.objects.get(pk=first.pk).status == "complete"
    assert LoggedMessage.objects.get(pk=second.pk).status == "complete"


def test_many_messages_of_one_entity_are_processed_in_order_in_batches(effects: Any, env: Any) -> None:
    env(queue__batch_size=7)
    for i in range(30):
        _store(effects, "hot", i)
    assert worker.process_inbound() == 30
    assert [e[2] for e in effects.effects()] == list(range(30))


def test_two_overlapping_workers_never_process_a_message_twice(effects: Any, env: Any) -> None:
    env(queue__batch_size=5)
    for i in range(60):
        _store(effects, f"e{i % 12}", i, sleep=0.002)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.process_inbound()
        except BaseException as e:  # noqa: BLE001 - the thread hands any failure to the test  # pragma: no cover
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    done = effects.effects()
    assert sorted(e[0] for e in done) == sorted(LoggedMessage.objects.values_list("id", flat=True))  # each once
    for key in {e[1] for e in done}:
        ns = [e[2] for e in done if e[1] == key]
        assert ns == sorted(ns)  # per-entity order
    assert set(LoggedMessage.objects.values_list("status", flat=True)) == {"complete"}


def test_expired_lease_is_reclaimed_and_a_live_lease_is_respected(effects: Any) -> None:
    msg = _store(effects, "o1", 1)
    later = timezone.now() + timedelta(minutes=5)
    LoggedMessage.objects.filter(pk=msg.pk).update(status="processing", locked_until=later)
    assert worker.process_inbound() == 0  # someone else holds it
    LoggedMessage.objects.filter(pk=msg.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert worker.process_inbound() == 1  # its worker died: taken over
    msg.refresh_from_db()
    assert msg.status == "complete"


def test_a_lost_claim_is_not_finished(effects: Any) -> None:
    _store(effects, "o1", 1)
    (claimed,) = worker._claim("in", 10)
    LoggedMessage.objects.filter(pk=claimed.id).update(locked_until=timezone.now() + timedelta(hours=1))  # taken over
    assert worker._process_inbound(claimed, __import__("mcom.envconfig").envconfig.current().queue) is None
    assert effects.effects() == []


def test_manual_retry_and_ignore(effects: Any, queue_fast: Any) -> None:
    msg = _store(effects, "o1", 1, method=effects.FAIL, mode="permanent")
    worker.run_until_idle()
    worker.retry(msg.pk)
    msg.refresh_from_db()
    assert msg.status == "retry"
    assert msg.next_attempt_at <= timezone.now()
    worker.run_until_idle()
    msg.refresh_from_db()
    assert msg.status == "error"
    assert msg.attempts == 2
    assert worker.ignore(msg.pk).status == "ignored"
    with pytest.raises(LookupError):
        worker.retry(10**9)


def test_sigterm_flag_stops_between_messages(effects: Any) -> None:
    for i in range(5):
        _store(effects, f"e{i}", i)
    worker.request_stop()
    assert worker.process_inbound() == 0
    worker.clear_stop()
    assert set(LoggedMessage.objects.values_list("status", flat=True)) == {"new"}
    assert worker.process_inbound() == 5


# ---------------------------------------------------------------------------------- outbound


def test_outbound_sent_by_kind_with_on_sent_in_the_same_transaction(bus: FakeBus, routes: Any) -> None:
    bus.answers[routes.OUT_DELEGATE] = (200, b'{"jsonrpc":"2.0","id":1,"result":{"accepted":true}}')
    m1 = outbox.enqueue(routes.OUT_EVENT, {"product": {"sku": "a"}}, entity_key="product:a")
    m2 = outbox.enqueue(routes.OUT_DELEGATE, {"order": {"id": "1"}}, entity_key="order:1")
    assert worker.send_outbound() == 2
    sent = sorted(bus.rpc_requests(), key=lambda r: r.path, reverse=True)  # two entities: sent concurrently
    assert [(r.path, r.json["id"]) for r in sent] == [("/events", m1.message_id), ("/delegate/oms", m2.message_id)]
    assert sent[0].json["params"] == {"product": {"sku": "a"}}
    m2.refresh_from_db()
    assert m2.status == "complete"
    assert json.loads(m2.result) == {"accepted": True}
    assert m2.attempts == 1
    assert sorted(routes.SENT, key=lambda pair: pair[0]) == [(m1.pk, []), (m2.pk, {"accepted": True})]


def test_outbound_failure_retried_then_parked_with_on_failed(bus: FakeBus, routes: Any, queue_fast: Any) -> None:
    bus.answers[routes.OUT_EVENT] = (503, b"down")
    msg = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="k")
    later = outbox.enqueue(routes.OUT_EVENT, {"x": 2}, entity_key="k")
    worker.run_until_idle()
    msg.refresh_from_db()
    assert (msg.status, msg.attempts) == ("error", 3)
    assert "OmsUnavailable" in msg.last_error
    assert "HTTP 503" in msg.last_error
    assert [w for _, _, w in routes.FAILED] == [True, True, False]
    assert LoggedMessage.objects.get(pk=later.pk).status == "new"  # held back behind the failed one
    bus.answers.pop(routes.OUT_EVENT)
    worker.retry(msg.pk)
    worker.run_until_idle()
    assert set(LoggedMessage.objects.values_list("status", flat=True)) == {"complete"}


def test_outbound_permanent_rpc_error_is_parked_at_once(bus: FakeBus, routes: Any, queue_fast: Any) -> None:
    bus.answers[routes.OUT_EVENT] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}')
    msg = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="k")
    worker.run_until_idle()
    msg.refresh_from_db()
    assert (msg.status, msg.attempts) == ("error", 1)
    assert "-32602" in msg.last_error


def test_send_now_delivers_one_message(bus: FakeBus, routes: Any) -> None:
    first = outbox.enqueue(routes.OUT_DELEGATE, {"order": {"id": "1"}}, entity_key="order:1")
    second = outbox.enqueue(routes.OUT_DELEGATE, {"order": {"id": "1"}, "v": 2}, entity_key="order:1")
    assert worker.send_now(second.pk) is False  # not first of its entity
    assert worker.send_now(first.pk) is True
    assert len(bus.rpc_requests()) == 1
    assert worker.send_now(first.pk) is False  # already sent


def test_outbound_waits_untouched_while_the_bus_is_not_configured(routes: Any) -> None:
    msg = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="k")
    assert worker.send_outbound() == 0
    msg.refresh_from_db()
    assert (msg.status, msg.attempts) == ("new", 0)


# ------------------------------------------------------------------------ outbound batches


def test_outbound_sends_each_entity_once_and_records_every_success(bus: FakeBus, routes: Any) -> None:
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(5)]
    assert worker.send_outbound() == 5
    # different entities go concurrently: any order across entities, each exactly once
    assert sorted(r.json["params"]["n"] for r in bus.rpc_requests()) == list(range(5))
    assert sorted(log_id for log_id, _ in routes.SENT) == [m.pk for m in msgs]
    rows = LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs])
    assert {(r.status, r.attempts, r.locked_until, r.last_error) for r in rows} == {("complete", 1, None, "")}
    assert all(r.processed_at is not None for r in rows)


def test_outbound_batch_hook_failure_parks_only_that_message_and_holds_its_entity(
    bus: FakeBus, routes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[int]] = []

    def many(pairs: list[tuple[Any, Any]]) -> None:
        calls.append([m.log_id for m, _ in pairs])
        if any(m.params.get("boom") for m, _ in pairs):
            raise RuntimeError("hook bug")
        routes.SENT.extend((m.log_id, r) for m, r in pairs)

    route = registry.outbound_route(routes.OUT_EVENT)
    assert route is not None
    monkeypatch.setitem(registry._registry.outbound, routes.OUT_EVENT, dataclasses.replace(route, on_sent_many=many))
    a = outbox.enqueue(routes.OUT_EVENT, {"n": 1}, entity_key="p:a")
    bad = outbox.enqueue(routes.OUT_EVENT, {"n": 2, "boom": True}, entity_key="p:b")
    c = outbox.enqueue(routes.OUT_EVENT, {"n": 3}, entity_key="p:c")
    held = outbox.enqueue(routes.OUT_EVENT, {"n": 4}, entity_key="p:b")  # after the failing one, same entity
    worker.send_outbound()
    statuses = dict(LoggedMessage.objects.values_list("id", "status"))
    assert (statuses[a.pk], statuses[bad.pk], statuses[c.pk], statuses[held.pk]) == ("complete", "error", "complete", "new")
    assert LoggedMessage.objects.get(pk=bad.pk).last_error.startswith("delivered, but on_sent failed: RuntimeError")
    assert sorted(r.json["params"]["n"] for r in bus.rpc_requests()) == [1, 2, 3]  # the held-back row was not sent
    assert [bad.pk] in calls  # the failing hook ran alone (after a failed group call, if it arrived with others)
    assert sorted(log_id for log_id, _ in routes.SENT) == [a.pk, c.pk]


def test_outbound_successes_are_recorded_in_groups_without_savepoints(
        bus: FakeBus, routes: Any, env: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    env(queue__send_concurrency=4)
    bus.gate = 4  # four sends finish together: they are recorded as one group
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(4)]
    with CaptureQueriesContext(connection) as queries:
        assert worker.send_outbound() == 4
    sql = [q["sql"].upper() for q in queries.captured_queries]
    assert not [s for s in sql if "SAVEPOINT" in s]  # a savepoint per hook only after a hook failed
    assert sorted(log_id for log_id, _ in routes.SENT) == [m.pk for m in msgs]
    assert set(LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs]).values_list("status", flat=True)) == {"complete"}


def test_outbound_rows_released_unsent_get_their_attempt_back(bus: FakeBus, routes: Any) -> None:
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(3)]
    worker.request_stop()
    assert worker.tick(LoggedMessage.OUT) == 0
    worker.clear_stop()
    rows = LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs])
    assert {(r.status, r.attempts, r.locked_until) for r in rows} == {("new", 0, None)}
    assert bus.rpc_requests() == []


def test_outbound_sends_concurrently_across_entities_and_in_order_within_one(
        bus: FakeBus, routes: Any, env: Any) -> None:
    env(queue__send_concurrency=4)
    bus.gate = 4  # every request waits until 4 are in flight at once: a sequential sender would stall
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": n, "v": v}, entity_key=f"p:{n}") for v in range(3) for n in range(4)]
    assert worker.send_outbound() == 12
    assert bus.max_inflight == 4
    sent = [r.json["params"] for r in bus.rpc_requests()]
    assert sorted((p["n"], p["v"]) for p in sent) == sorted((n, v) for n in range(4) for v in range(3))  # each once
    for n in range(4):  # one entity's messages one after another, in id order
        assert [p["v"] for p in sent if p["n"] == n] == [0, 1, 2]
    rows = LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs])
    assert {(r.status, r.attempts) for r in rows} == {("complete", 1)}


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """What the sender does, in order: ``("send", log id)`` and ``("recorded", log id)``."""
    seen: list[tuple[str, int]] = []
    real_send, real_record = sender.send_one, sender.record_sent

    def send_one(c: Any, *args: Any) -> Any:
        seen.append(("send", c.id))
        return real_send(c, *args)

    def record_sent(sent: Any, token: Any, **kwargs: Any) -> Any:
        seen.extend(("recorded", s.claim.id) for s in sent)
        return real_record(sent, token, **kwargs)

    monkeypatch.setattr(sender, "send_one", send_one)
    monkeypatch.setattr(sender, "record_sent", record_sent)
    return seen


def test_outbound_next_message_of_an_entity_waits_for_the_previous_to_be_recorded(
        bus: FakeBus, routes: Any, env: Any, steps: list[tuple[str, int]]) -> None:
    env(queue__send_concurrency=4)
    first = outbox.enqueue(routes.OUT_EVENT, {"n": 0}, entity_key="p:x")
    second = outbox.enqueue(routes.OUT_EVENT, {"n": 1}, entity_key="p:x")
    assert worker.send_outbound() == 2
    assert steps == [("send", first.pk), ("recorded", first.pk), ("send", second.pk), ("recorded", second.pk)]


def test_outbound_with_one_slot_records_every_send_before_the_next_of_any_entity(
        bus: FakeBus, routes: Any, env: Any, steps: list[tuple[str, int]]) -> None:
    env(queue__send_concurrency=1)  # a kill then re-sends at most one message
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(3)]
    assert worker.send_outbound() == 3
    assert steps == [(step, m.pk) for m in msgs for step in ("send", "recorded")]


def test_outbound_lease_is_renewed_for_the_rest_of_the_batch(bus: FakeBus, routes: Any, env: Any) -> None:
    env(queue__lease_seconds=5, queue__message_time_limit=10)  # renewed before every message
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key="p:same") for i in range(3)]
    assert worker.send_outbound() == 3
    assert set(LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs]).values_list("status", flat=True)) == {"complete"}


def test_outbound_claim_lost_mid_batch_is_not_recorded(bus: FakeBus, routes: Any) -> None:
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(3)]
    batch = worker._claim(LoggedMessage.OUT, 10)
    # another worker took the second row over (its lease expired): a different token
    LoggedMessage.objects.filter(pk=msgs[1].pk).update(locked_until=timezone.now() + timedelta(hours=1))
    statuses = sender.send_claimed(batch, worker.envconfig.current().queue)
    assert statuses == {msgs[0].pk: "complete", msgs[1].pk: None, msgs[2].pk: "complete"}
    assert LoggedMessage.objects.get(pk=msgs[1].pk).status == "processing"
    assert sorted(log_id for log_id, _ in routes.SENT) == [msgs[0].pk, msgs[2].pk]
