"""The message log's state machine (``mcom.service_bus.log``) and one worker tick, asserted on the rows."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mcom.service_bus import inbox, log, outbox, worker
from mcom.service_bus.models import LoggedMessage, Status
from mcom.service_bus.retry import Decision, RetryPolicy

from .fakebus import FakeBus

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = 300.0


def _rows(*msgs: LoggedMessage) -> list[tuple[str, int]]:
    by_id = {r.pk: r for r in LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs])}
    return [(by_id[m.pk].status, by_id[m.pk].attempts) for m in msgs]


def test_one_inbound_tick_completes_due_rows_and_parks_the_failing_one(effects: Any, queue_fast: Any) -> None:
    a1 = inbox.store_inbound(effects.COUNT, {"entity": "a", "n": 1})
    a2 = inbox.store_inbound(effects.COUNT, {"entity": "a", "n": 2})
    bad = inbox.store_inbound(effects.FAIL, {"entity": "b", "mode": "permanent"})
    b2 = inbox.store_inbound(effects.COUNT, {"entity": "b", "n": 3})
    c1 = inbox.store_inbound(effects.COUNT, {"entity": "c", "n": 4})
    assert worker.tick(LoggedMessage.IN) == 4  # b2 waits behind the failed row of its entity
    assert _rows(a1, a2, bad, b2, c1) == [("complete", 1), ("complete", 1), ("error", 1), ("new", 0), ("complete", 1)]
    done = LoggedMessage.objects.get(pk=a1.pk)
    assert done.locked_until is None
    assert done.processed_at is not None
    assert done.result == '{"counted":1}'
    assert LoggedMessage.objects.get(pk=bad.pk).last_error == "PermanentError: this cannot work"
    assert LoggedMessage.objects.get(pk=b2.pk).locked_until is None
    assert [e[2] for e in effects.effects()] == [1, 2, 4]


def test_one_outbound_tick_records_sent_and_failed_rows(bus: FakeBus, routes: Any, queue_fast: Any) -> None:
    ok = outbox.enqueue(routes.OUT_EVENT, {"n": 1}, entity_key="p:1")
    down = outbox.enqueue(routes.OUT_DELEGATE, {"n": 2}, entity_key="p:2")
    behind = outbox.enqueue(routes.OUT_EVENT, {"n": 3}, entity_key="p:2")
    bus.answers[routes.OUT_DELEGATE] = (503, b"down")
    before = timezone.now()
    assert worker.tick(LoggedMessage.OUT) == 2
    assert _rows(ok, down, behind) == [("complete", 1), ("retry", 1), ("new", 0)]
    failed = LoggedMessage.objects.get(pk=down.pk)
    assert failed.next_attempt_at >= before
    assert failed.locked_until is None
    assert "HTTP 503" in failed.last_error
    assert [log_id for log_id, _ in routes.SENT] == [ok.pk]
    assert [(log_id, will_retry) for log_id, _, will_retry in routes.FAILED] == [(down.pk, True)]


def test_claim_leases_due_rows_in_entity_order(effects: Any) -> None:
    x1 = inbox.store_inbound(effects.COUNT, {"entity": "x", "n": 1})
    x2 = inbox.store_inbound(effects.COUNT, {"entity": "x", "n": 2})
    y1 = inbox.store_inbound(effects.COUNT, {"entity": "y", "n": 3})
    z1 = inbox.store_inbound(effects.COUNT, {"entity": "z", "n": 4})
    (parked,) = log.claim(LoggedMessage.IN, 1, lease_seconds=LEASE)
    assert parked.id == x1.pk
    assert log.fail(parked, Decision("PermanentError: no", None), attempts=1)
    LoggedMessage.objects.filter(pk=z1.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    claimed = log.claim(LoggedMessage.IN, 10, lease_seconds=LEASE)
    assert [c.id for c in claimed] == [y1.pk]  # x2 is held back by the error row, z1 is not due
    row = LoggedMessage.objects.get(pk=y1.pk)
    assert (row.status, row.locked_until, row.attempts) == ("processing", claimed[0].token, 0)
    assert _rows(x1, x2, z1) == [("error", 1), ("new", 0), ("new", 0)]
    assert log.claim(LoggedMessage.IN, 10, lease_seconds=LEASE) == []  # y1 is leased
    assert log.claim(LoggedMessage.IN, 10, lease_seconds=LEASE, ids=[x2.pk, z1.pk]) == []


def test_claim_of_given_ids_takes_only_the_first_open_row_of_each_entity(bus: FakeBus, routes: Any) -> None:
    p1 = outbox.enqueue(routes.OUT_EVENT, {"n": 1}, entity_key="p:1")
    p1b = outbox.enqueue(routes.OUT_EVENT, {"n": 2}, entity_key="p:1")
    p2 = outbox.enqueue(routes.OUT_EVENT, {"n": 3}, entity_key="p:2")
    claimed = log.claim(LoggedMessage.OUT, 10, lease_seconds=LEASE, ids=[p1b.pk, p2.pk])
    assert [c.id for c in claimed] == [p2.pk]
    assert _rows(p1, p1b, p2) == [("new", 0), ("new", 0), ("processing", 1)]  # outbound counts at the claim


def test_recording_needs_the_claim_token(bus: FakeBus, routes: Any) -> None:
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(4)]
    claimed = log.claim(LoggedMessage.OUT, 10, lease_seconds=LEASE)
    token = claimed[0].token
    stale = token - timedelta(seconds=1)
    with pytest.raises(log.ClaimLost):
        log.complete_many([(claimed[0].id, {"ok": True})], stale)
    assert not log.fail(dataclasses.replace(claimed[1], token=stale), Decision("x", None))
    assert _rows(*msgs) == [("processing", 1)] * 4

    log.complete_many([(claimed[0].id, {"ok": True})], token)
    at = timezone.now() + timedelta(minutes=5)
    assert log.fail(claimed[1], Decision("OmsUnavailable: down", at))
    renewed, kept = log.renew([claimed[2].id, claimed[3].id], token, LEASE * 2)
    assert kept == {claimed[2].id, claimed[3].id}
    assert renewed > token
    log.release([dataclasses.replace(claimed[3], token=renewed)])
    assert _rows(*msgs) == [("complete", 1), ("retry", 1), ("processing", 1), ("new", 0)]
    rows = {r.pk: r for r in LoggedMessage.objects.filter(pk__in=[m.pk for m in msgs])}
    assert rows[msgs[0].pk].result == '{"ok":true}'
    assert rows[msgs[0].pk].processed_at is not None
    assert rows[msgs[1].pk].next_attempt_at == at
    assert rows[msgs[1].pk].last_error == "OmsUnavailable: down"
    assert rows[msgs[2].pk].locked_until == renewed
    assert rows[msgs[3].pk].locked_until is None


def test_supersede_ignores_only_parked_rows_of_the_given_entities(bus: FakeBus, routes: Any) -> None:
    a = outbox.enqueue(routes.OUT_EVENT, {"n": 1}, entity_key="order:1")
    b = outbox.enqueue(routes.OUT_EVENT, {"n": 2}, entity_key="order:2")
    c = outbox.enqueue(routes.OUT_EVENT, {"n": 3}, entity_key="order:3")
    for claimed in log.claim(LoggedMessage.OUT, 10, lease_seconds=LEASE):
        if claimed.id != c.pk:
            log.fail(claimed, Decision("PermanentError: rejected", None))
    assert log.supersede(LoggedMessage.OUT, routes.OUT_EVENT, ["order:1", "order:3"]) == 1
    assert [s for s, _ in _rows(a, b, c)] == ["ignored", "error", "processing"]


def test_inbound_insert_keeps_a_redelivery_once_and_a_different_body_as_a_variant() -> None:
    row = log.InboundRow("m", "1", "k", '{"params":{"a":1}}')
    first = log.store_inbound(row)
    assert log.store_inbound(row).pk == first.pk
    other = log.store_inbound(log.InboundRow("m", "1", "k", '{"params":{"a":2}}'))
    assert other.pk != first.pk
    assert other.message_id == log.variant_id("1", '{"params":{"a":2}}')
    assert (other.status, other.attempts, other.locked_until, other.result) == (Status.NEW, 0, None, "")
    assert LoggedMessage.objects.count() == 2


def test_outbound_insert_writes_the_model_defaults(bus: FakeBus, routes: Any) -> None:
    (pk,) = log.insert_outbound(routes.OUT_EVENT, "event", [("mid-1", "p:1", "p:1", '{"n":1}')])
    row = LoggedMessage.objects.get(pk=pk)
    fresh = LoggedMessage()
    for name in ("status", "attempts", "locked_until", "last_error", "result", "processed_at"):
        assert getattr(row, name) == getattr(fresh, name), name
    assert (row.direction, row.topic, row.message_id, row.kind, row.dedupe_key) == ("out", routes.OUT_EVENT, "mid-1", "event", "p:1")
    assert tuple(f.column for f in LoggedMessage._meta.concrete_fields if f.column != "id") == log.COLUMNS


def test_send_messages_gives_up_after_failures_in_a_row(bus: FakeBus, routes: Any, env: Any) -> None:
    env(queue__send_concurrency=1)
    bus.answers[routes.OUT_EVENT] = (503, b"down")
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(5)]
    statuses = worker.send_messages([m.pk for m in msgs], give_up=RetryPolicy(0, 0, max_attempts=2))
    assert statuses == {msgs[0].pk: "retry", msgs[1].pk: "retry"}
    assert _rows(*msgs) == [("retry", 1), ("retry", 1), ("new", 0), ("new", 0), ("new", 0)]
    assert len(bus.rpc_requests()) == 2


def test_concurrent_send_gives_up_with_at_most_the_requests_in_flight(bus: FakeBus, routes: Any, env: Any) -> None:
    env(queue__send_concurrency=3)
    bus.answers[routes.OUT_EVENT] = (503, b"down")
    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(10)]
    statuses = worker.send_messages([m.pk for m in msgs], give_up=RetryPolicy(0, 0, max_attempts=2))
    # the give-up rule stops new sends; what was already in flight (≤ concurrency) is recorded
    assert 2 <= len(statuses) <= 2 + 3 - 1
    assert set(statuses.values()) == {"retry"}
    rows = _rows(*msgs)
    assert rows.count(("retry", 1)) == len(statuses)
    assert rows.count(("new", 0)) == 10 - len(statuses)
    assert len(bus.rpc_requests()) == len(statuses)


def test_retry_policy_by_error_class_and_attempts() -> None:
    from mcom.service_bus.errors import PermanentError, RetryLater

    policy = RetryPolicy(10, 25, max_attempts=3)
    now = timezone.now()
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 25, 25]
    assert policy.after(RetryLater("later"), 1, now) == Decision("RetryLater: later", now + timedelta(seconds=10), transient=True)
    assert policy.after(ValueError("bug"), 2, now).retry_at == now + timedelta(seconds=20)
    assert policy.after(RetryLater("later"), 3, now) == Decision("gave up after 3 attempts: RetryLater: later", None, transient=True)
    assert policy.after(PermanentError("no"), 1, now) == Decision("PermanentError: no", None)
    assert RetryPolicy(30, 3600).after(RetryLater("x"), 1000, now).will_retry  # no limit


def test_complete_many_with_repeated_results_is_all_or_nothing(bus: FakeBus, routes: Any) -> None:
    from django.db import transaction

    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(6)]
    claimed = log.claim(LoggedMessage.OUT, 10, lease_seconds=LEASE)
    LoggedMessage.objects.filter(pk=msgs[4].pk).update(locked_until=timezone.now() + timedelta(hours=1))  # taken over
    with pytest.raises(log.ClaimLost), transaction.atomic():
        log.complete_many([(c.id, []) for c in claimed], claimed[0].token)
    assert [s for s, _ in _rows(*msgs)] == ["processing"] * 6
    log.complete_many([(c.id, []) for c in claimed if c.id != msgs[4].pk], claimed[0].token)
    assert [s for s, _ in _rows(*msgs)] == ["complete"] * 4 + ["processing", "complete"]
    assert set(LoggedMessage.objects.filter(status="complete").values_list("result", flat=True)) == {"[]"}


def test_complete_many_with_distinct_results_is_all_or_nothing_and_stores_each_result(
        bus: FakeBus, routes: Any) -> None:
    from django.db import transaction

    msgs = [outbox.enqueue(routes.OUT_EVENT, {"n": i}, entity_key=f"p:{i}") for i in range(6)]
    claimed = log.claim(LoggedMessage.OUT, 10, lease_seconds=LEASE)
    LoggedMessage.objects.filter(pk=msgs[4].pk).update(locked_until=timezone.now() + timedelta(hours=1))  # taken over
    with pytest.raises(log.ClaimLost), transaction.atomic():  # one result per row: a VALUES list / executemany
        log.complete_many([(c.id, {"order_id": f"o{c.id}", "note": "it's 100%"}) for c in claimed], claimed[0].token)
    assert [s for s, _ in _rows(*msgs)] == ["processing"] * 6
    log.complete_many([(c.id, {"order_id": f"o{c.id}"}) for c in claimed if c.id != msgs[4].pk], claimed[0].token)
    assert [s for s, _ in _rows(*msgs)] == ["complete"] * 4 + ["processing", "complete"]
    results = dict(LoggedMessage.objects.filter(status="complete").values_list("id", "result"))
    assert results == {m.pk: f'{{"order_id":"o{m.pk}"}}' for m in msgs if m.pk != msgs[4].pk}
