"""Nothing stuck, nothing lost: transient parks re-queued by cron (bounded, logged), permanent ones
never; bulk retry/ignore by filter from the CLI; parked state messages superseded by a newer one;
database errors of a handler and "no such method" refusals parked at once."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from django.utils import timezone

from mcom import envconfig
from mcom.cli.main import main
from mcom.service_bus import inbox, jobs, log, methods, outbox, recovery, registry, worker
from mcom.service_bus.models import LoggedMessage

from .fakebus import FakeBus

pytestmark = pytest.mark.django_db(transaction=True)


def _store(method: str, entity: str, n: int, **params: Any) -> LoggedMessage:
    return inbox.store_inbound(method, {"entity": entity, "n": n, **params})


def _get(msg: LoggedMessage) -> LoggedMessage:
    return LoggedMessage.objects.get(pk=msg.pk)


# ============================================================ 1. transient parks are re-queued


def test_inbound_transient_park_is_requeued_bounded_and_logged(effects: Any, env: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=2, queue__requeue_max=2,
        queue__requeue_inbound_after_seconds=0)
    msg = _store(effects.FAIL, "o1", 1, mode="retry")  # entity not known yet, for good
    worker.run_until_idle()
    row = _get(msg)
    assert (row.status, row.attempts, row.park_transient, row.requeues) == ("error", 2, True, 0)
    caplog.set_level(logging.WARNING, logger="mcom.service_bus.events")
    for n in (1, 2):
        reason = row.last_error
        assert recovery.requeue_pass() == {"in": {effects.FAIL: 1}}
        row = _get(msg)
        assert (row.status, row.requeues, row.last_error) == ("retry", n, reason)  # reason kept
        worker.run_until_idle()
        row = _get(msg)
        assert (row.status, row.attempts, row.park_transient) == ("error", 2 + n, True)  # one attempt per re-queue
        assert row.last_error == f"gave up after {2 + n} attempts: RetryLater: entity not known yet"
    assert recovery.requeue_pass() == {}  # [queue] requeue_max reached: stays parked
    lines = [r.getMessage() for r in caplog.records if "re-queued" in r.getMessage()]
    assert lines == [f"re-queued 1 parked inbound message (parked over 0 s on a transient cause): {effects.FAIL} 1"] * 2


def test_inbound_transient_park_waits_requeue_inbound_after_seconds(effects: Any, env: Any) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=1, queue__requeue_inbound_after_seconds=900)
    msg = _store(effects.FAIL, "o1", 1, mode="retry")
    worker.run_until_idle()
    assert recovery.requeue_pass() == {}
    assert recovery.requeue_pass(timezone.now() + timedelta(seconds=901)) == {"in": {effects.FAIL: 1}}
    assert _get(msg).status == "retry"


def test_requeue_is_capped_per_pass(effects: Any, env: Any) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=1, queue__requeue_inbound_after_seconds=0,
        queue__requeue_per_pass=2)
    for n in range(3):
        _store(effects.FAIL, f"o{n}", n, mode="retry")
    worker.run_until_idle()
    assert recovery.requeue_pass() == {"in": {effects.FAIL: 2}}
    assert recovery.requeue_pass() == {"in": {effects.FAIL: 1}}  # the third (the first two wait as retry)


def test_permanent_parks_are_never_requeued(effects: Any, env: Any, bus: FakeBus, routes: Any) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=3, queue__requeue_inbound_after_seconds=0)
    inbound = _store(effects.FAIL, "o1", 1, mode="permanent")
    bus.answers[routes.OUT_EVENT] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}')
    bus.answers[routes.OUT_DELEGATE] = (422, b"unprocessable")
    invalid = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="a")
    refused = outbox.enqueue(routes.OUT_DELEGATE, {"x": 1}, entity_key="b")
    worker.run_until_idle()
    for msg in (inbound, invalid, refused):
        row = _get(msg)
        assert (row.status, row.attempts, row.park_transient) == ("error", 1, False), row.last_error
    bus.answers.clear()
    assert recovery.requeue_pass() == {}
    assert {_get(m).status for m in (inbound, invalid, refused)} == {"error"}


@pytest.mark.parametrize("answer", [
    b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Handler not found"}}',
    b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}',
])
def test_no_such_method_refusal_is_parked_at_once_and_never_requeued(bus: FakeBus, routes: Any, env: Any,
                                                                      answer: bytes) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=5)
    bus.answers[routes.OUT_EVENT] = (200, answer)
    msg = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="k")
    worker.run_until_idle()
    row = _get(msg)
    assert (row.status, row.attempts, row.park_transient) == ("error", 1, False)
    assert "OmsMethodNotRouted" in row.last_error
    bus.answers.clear()
    assert recovery.requeue_pass() == {}


def test_outbound_transient_parks_wait_while_the_oms_is_unreachable_then_are_requeued(
        bus: FakeBus, routes: Any, env: Any, caplog: pytest.LogCaptureFixture) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=2)
    bus.answers[routes.OUT_EVENT] = (503, b"down")
    parked = [outbox.enqueue(routes.OUT_EVENT, {"x": n}, entity_key=f"k{n}") for n in range(3)]
    worker.run_until_idle()
    assert [(_get(m).status, _get(m).park_transient) for m in parked] == [("error", True)] * 3
    url = bus.url
    env(service_bus__url="http://127.0.0.1:9/")  # nothing listens: the probe fails
    assert not recovery.oms_reachable()
    assert recovery.requeue_pass() == {}
    assert {_get(m).status for m in parked} == {"error"}
    env(service_bus__url=url)
    bus.answers.clear()
    caplog.set_level(logging.WARNING, logger="mcom.service_bus.events")
    assert recovery.requeue_pass() == {"out": {routes.OUT_EVENT: 3}}
    assert [r.getMessage() for r in caplog.records if "re-queued" in r.getMessage()] == [
        f"re-queued 3 parked outbound messages (the OMS answers again): {routes.OUT_EVENT} 3"]
    worker.run_until_idle()
    assert {_get(m).status for m in parked} == {"complete"}


def test_outbound_transient_parks_are_requeued_after_a_later_success(bus: FakeBus, routes: Any, env: Any) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=1)
    bus.answers[routes.OUT_EVENT] = (503, b"down")
    parked = outbox.enqueue(routes.OUT_EVENT, {"x": 1}, entity_key="a")
    worker.run_until_idle()
    assert _get(parked).park_transient
    bus.answers.clear()
    later = outbox.enqueue(routes.OUT_EVENT, {"x": 2}, entity_key="b")
    worker.run_until_idle()
    assert _get(later).status == "complete"
    env(service_bus__url="http://127.0.0.1:9/")  # the probe would fail: not consulted, a success is known
    assert recovery.requeue_pass() == {"out": {routes.OUT_EVENT: 1}}
    assert _get(parked).status == "retry"


def test_requeue_parked_is_a_cron_job_of_the_bus() -> None:
    job = next(j for j in registry.cron_jobs() if j.name == "service_bus.requeue_parked")
    assert job.every_seconds == 60
    assert job.run is jobs.requeue_parked


# ============================================================ 2. bulk retry / ignore from the CLI


def _parked(effects: Any, entity: str, n: int, *, mode: str = "permanent") -> LoggedMessage:
    return _store(effects.FAIL, entity, n, mode=mode)


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_bulk_retry_refuses_an_unfiltered_call_unless_all(effects: Any, queue_fast: Any) -> None:
    rows = [_parked(effects, f"e{n}", n) for n in range(3)]
    worker.run_until_idle()
    result = _cli("oms:queue:retry")
    assert result.exit_code != 0
    assert "no LOG_ID and no filter" in result.output
    assert "--all" in result.output
    assert {_get(r).status for r in rows} == {"error"}
    result = _cli("oms:queue:retry", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 messages queued for retry."
    assert {_get(r).status for r in rows} == {"retry"}


def test_bulk_retry_and_ignore_by_filters_with_dry_run(effects: Any, queue_fast: Any) -> None:
    a = [_parked(effects, "a", n) for n in range(2)]  # the first parked, the second held back behind it (new)
    b = _parked(effects, "b", 9)
    done = _store(effects.COUNT, "c", 1)
    worker.run_until_idle()
    assert [_get(r).status for r in a] == ["error", "new"]
    LoggedMessage.objects.filter(pk=b.pk).update(last_error="OmsUnavailable: HTTP 503")
    result = _cli("oms:queue:retry", "--entity", "test:a", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 message would be queued for retry (dry run: nothing changed)."
    assert [_get(r).status for r in a] == ["error", "new"]
    result = _cli("oms:queue:retry", "--error-contains", "http 503", "--direction", "in", "--topic", effects.FAIL)
    assert result.output.strip() == "1 message queued for retry."
    assert _get(b).status == "retry"
    assert _get(a[0]).status == "error"
    result = _cli("oms:queue:ignore", "--entity", "test:a", "--status", "error", "--status", "new")
    assert result.output.strip() == "2 messages ignored."
    assert {_get(r).status for r in a} == {"ignored"}
    result = _cli("oms:queue:ignore", str(done.pk), str(b.pk), "999999")  # complete: not ignorable
    assert result.exit_code == 0, result.output
    assert "1 message ignored; 1 skipped (not new/retry/error, or being processed)." in result.output
    assert "No such message: #999999." in result.output
    assert _get(done).status == "complete"


def test_bulk_retry_by_dates_and_status(effects: Any, queue_fast: Any) -> None:
    old = _parked(effects, "a", 1)
    new = _parked(effects, "b", 2)
    worker.run_until_idle()
    LoggedMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    before = (timezone.now() - timedelta(days=5)).strftime("%Y-%m-%d")
    assert _cli("oms:queue:retry", "--before", before).output.strip() == "1 message queued for retry."
    assert (_get(old).status, _get(new).status) == ("retry", "error")
    assert _cli("oms:queue:ignore", "--after", before, "--status", "error").output.strip() == "1 message ignored."
    assert _get(new).status == "ignored"
    assert _cli("oms:queue:retry", "--after", before, "--status", "ignored").output.strip() == "1 message queued for retry."


def test_bulk_change_skips_messages_in_flight(effects: Any, queue_fast: Any) -> None:
    rows = [_parked(effects, f"e{n}", n, mode="retry") for n in range(2)]
    claimed = log.claim(LoggedMessage.IN, 1, lease_seconds=300)
    assert [c.id for c in claimed] == [rows[0].pk]
    result = _cli("oms:queue:ignore", "--status", "processing", "--status", "new", "--topic", effects.FAIL)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 message ignored; 1 skipped (not new/retry/error, or being processed)."
    assert (_get(rows[0]).status, _get(rows[1]).status) == ("processing", "ignored")


@pytest.mark.parametrize(("args", "error"), [
    (["--after", "2026-02-01", "--before", "2026-01-01"], "--after must be earlier than --before"),
    (["--before", "yesterday"], "Invalid value for '--before'"),
    (["--status", "stuck"], "Invalid value for '--status'"),
    (["abc"], "Invalid value for '[LOG_IDS]...'"),
])
def test_bulk_bad_input_gets_one_clear_error(db: None, args: list[str], error: str) -> None:
    result = _cli("oms:queue:retry", *args)
    assert result.exit_code != 0
    assert error in result.output


# ============================================================ 3. superseded state messages


def test_a_parked_state_message_is_superseded_by_a_later_one_of_its_entity(effects: Any, queue_fast: Any,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mcom.service_bus.events")
    bad = _store(effects.STATE, "agg", 1, bad=True)
    worker.run_until_idle()
    assert _get(bad).status == "error"  # nothing newer yet: parked, holds the entity
    later = [_store(effects.STATE, "agg", n) for n in range(2, 5)]
    other = _store(effects.COUNT, "agg", 99)  # not state-based, same entity: runs after the newer states
    worker.run_until_idle()
    row = _get(bad)
    assert row.status == "ignored"
    assert row.last_error == f"superseded by #{later[0].pk}: InvalidPayload: lines[0].id: null (state 1)"
    assert [n for _, _, n in effects.effects()] == [2, 3, 4, 99]
    assert {_get(m).status for m in [*later, other]} == {"complete"}
    assert any(f"message {bad.pk} superseded by #{later[0].pk}" in r.getMessage() for r in caplog.records)


def test_a_state_message_parked_after_a_newer_one_arrived_is_superseded_at_park_time(effects: Any,
                                                                                      queue_fast: Any) -> None:
    bad = _store(effects.STATE, "agg", 1, bad=True)
    newer = _store(effects.STATE, "agg", 2)
    claimed = log.claim(LoggedMessage.IN, 1, lease_seconds=300)  # only the first: the newer one waits behind it
    assert [c.id for c in claimed] == [bad.pk]
    assert worker._process_inbound(claimed[0], envconfig.current().queue) == "error"
    assert _get(bad).status == "ignored"
    assert _get(bad).last_error.startswith(f"superseded by #{newer.pk}: ")
    worker.run_until_idle()
    assert _get(newer).status == "complete"


def test_a_dependent_message_still_waits_visibly(effects: Any, queue_fast: Any) -> None:
    create = _parked(effects, "ord", 1)  # not state-based (an order create): holds its entity
    update = _store(effects.STATE, "ord", 2)
    newer = _store(effects.FAIL, "ord", 3, mode="permanent")
    worker.run_until_idle()
    assert (_get(create).status, _get(update).status, _get(newer).status) == ("error", "new", "new")


def test_order_updates_and_stock_snapshots_are_state_based_shipments_and_creates_are_not() -> None:
    topics = registry.supersedable_topics("in")
    assert {methods.ORDER_UPDATED, methods.STOCK_UPDATED} <= topics
    assert not topics & {methods.ORDER_CREATED, methods.SHIPMENT_DONE, methods.REQUEST_SHIPMENT}
    assert registry.supersedable_topics("out") == frozenset()


# ============================================================ 4. database errors are permanent


@pytest.mark.parametrize(("mode", "error"), [("integrity", "IntegrityError"), ("nul", "DataError")])
def test_a_database_error_of_a_handler_is_parked_at_once(effects: Any, env: Any, mode: str, error: str) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=5, queue__requeue_inbound_after_seconds=0)
    msg = _store(effects.FAIL, "o1", 1, mode=mode)
    worker.run_until_idle()
    row = _get(msg)
    assert (row.status, row.attempts, row.park_transient) == ("error", 1, False)
    assert row.last_error.startswith(f"{error}: ")
    assert effects.effects() == []  # the handler's writes rolled back
    assert recovery.requeue_pass() == {}
