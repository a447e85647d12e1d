"""The message-log worker: processes inbound and sends outbound messages, in order, with retries.

A tick (:func:`tick`) claims a batch of due rows of one direction and processes them in id
order. Claiming is atomic: PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` under a transaction
advisory lock (claims of one direction are serialized; they are short), SQLite a conditional
``UPDATE`` inside ``BEGIN IMMEDIATE``. Eligible rows are found by scanning open rows in id order
(partial index ``mcom_lmq_open``), so a claim costs O(rows scanned), never a per-row anti-join. A claimed row is ``processing`` with a lease
(``locked_until``, config ``[queue] lease_seconds``) whose value is the claim's token: a worker
that was killed leaves its rows to be taken over when the lease expires, and a worker only
finishes a row whose token is still its own.

Per-entity order: a row is eligible only when no earlier row (lower id) with the same
``entity_key`` and direction is still open (``new``/``retry``/``processing``/``error``) — unless
that earlier row is claimed in the same batch just before it. A failed row therefore holds back
the later rows of its entity only; other entities proceed.

Inbound: the handler runs in a transaction together with the status update, which is
conditional on the claim token (exactly-once effect). Outbound (:func:`_send_batch`): the claim
counts the attempt (``attempts + 1``, given back when a claimed row is released unsent); the
messages are sent one after another by the OMS client (path by ``kind``) and the successes are
recorded in batches: one transaction marks them ``complete`` (conditional on the claim token)
and runs their ``on_sent`` hooks — or one ``on_sent_many`` call per run of one method
(``registry.outbound(..., on_sent_many=...)``). The pending successes are recorded before a
failure is (hooks keep their order), before the next message of an entity with a pending one is sent (a failing
``on_sent`` still holds that entity back) and at the end of the batch. A failure is recorded at
once with ``on_failed(msg, error, will_retry)``. The lease is renewed for the rest of the batch
(one statement) when less than ``max(lease_seconds / 2, message_time_limit + 1)`` is left. A
send is at-least-once by nature: a worker killed mid-batch leaves its sent-but-unrecorded
messages to be sent again after the lease expires (message ids are stable; the OMS ignores
duplicates).
Failures: ``PermanentError``/non-retryable OMS errors → ``error`` at once; ``RetryLater``,
retryable OMS errors, time limit and unexpected exceptions → ``retry`` after exponential
backoff (``backoff_base_seconds * 2**(attempts-1)``, capped by ``backoff_max_seconds``) until
``max_attempts``, then ``error`` with the reason.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import inbox, registry, replay
from mcom.service_bus.errors import InvalidPayload, MessageError, OmsError, PermanentError, RetryLater
from mcom.service_bus.models import LoggedMessage as LM

log = logging.getLogger("mcom.service_bus.worker")

OPEN = (LM.NEW, LM.RETRY, LM.PROCESSING, LM.ERROR)
_CLAIM_LOCK = {LM.IN: 0x6D636F6D01, LM.OUT: 0x6D636F6D02}  # pg advisory lock keys ("mcom" + n)
_FIELDS = ("id", "direction", "topic", "message_id", "kind", "entity_key", "payload", "attempts", "created_at")


class TimeLimitExceeded(BaseException):
    """Raised inside a handler/sender that runs longer than ``[queue] message_time_limit``.

    A ``BaseException`` so that a handler's broad ``except Exception`` does not swallow it.
    """


@dataclass(frozen=True)
class Claimed:
    id: int
    direction: str
    topic: str
    message_id: str
    kind: str
    entity_key: str
    payload: str
    attempts: int
    created_at: datetime
    prev_status: str
    token: datetime  # the locked_until value written by our claim


# --------------------------------------------------------------------------- stop & limits

_stop = threading.Event()


def request_stop() -> None:
    """Ask running loops to stop after the current message."""
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def clear_stop() -> None:
    _stop.clear()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT stop the worker cleanly between messages.

    Main thread only (elsewhere a no-op); the previous handlers are restored on exit.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current message", signum)
        _stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds`` (main thread; else no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitExceeded(f"time limit of {seconds:g} s exceeded")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def backoff_seconds(attempts: int, queue: envconfig.QueueConfig) -> float:
    """Delay before the next attempt after ``attempts`` failed attempts (exponential, capped)."""
    exp = min(max(attempts - 1, 0), 32)
    return float(min(queue.backoff_base_seconds * (2**exp), queue.backoff_max_seconds))


def _failure(error: BaseException, attempts: int, queue: envconfig.QueueConfig, now: datetime) -> dict[str, Any]:
    """Status fields after a failed attempt: ``retry`` with backoff, or ``error`` when hopeless."""
    retryable = bool(getattr(error, "retryable", True)) if isinstance(error, MessageError) else True
    reason = f"{type(error).__name__}: {error}"[:4000]
    if retryable and attempts < queue.max_attempts:
        return {"status": LM.RETRY, "next_attempt_at": now + timedelta(seconds=backoff_seconds(attempts, queue)), "last_error": reason}
    if retryable:
        reason = f"gave up after {attempts} attempts: {reason}"[:4000]
    return {"status": LM.ERROR, "last_error": reason}


# --------------------------------------------------------------------------------- claiming


_T = LM._meta.db_table
#: open rows scanned per query while looking for eligible rows, and at most per claim
WINDOW = 500
SCAN_BUDGET = 100_000
_WINDOW_SQL = f"""
SELECT id, entity_key, status, next_attempt_at, locked_until FROM {_T}
WHERE direction = %s AND status IN ('new', 'retry', 'processing') AND id > %s {{only}}
ORDER BY id LIMIT %s
"""  # noqa: S608 - constants only (index mcom_lmq_open)
_ERRORS_SQL = f"""
SELECT entity_key, MIN(id) FROM {_T} WHERE direction = %s AND status = 'error' AND entity_key IN ({{keys}})
GROUP BY entity_key
"""  # noqa: S608 (index mcom_lmq_error)
_EARLIER_SQL = f"""
SELECT 1 FROM {_T} WHERE direction = %s AND entity_key = %s AND id < %s
  AND status IN ('new', 'retry', 'processing', 'error') LIMIT 1
"""  # noqa: S608
_CLAIMED_SQL = f"SELECT {', '.join(_FIELDS)} FROM {_T} WHERE id IN ({{ids}}) AND status = 'processing' AND locked_until = %s ORDER BY id"  # noqa: S608, E501


def _dt(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _aware(value: Any) -> datetime | None:
    """A datetime column value from a raw cursor (SQLite: naive UTC or text) as an aware datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _is_due(status: str, next_at: Any, locked_until: Any, now: datetime) -> bool:
    if status in (LM.NEW, LM.RETRY):
        nxt = _aware(next_at)
        return nxt is not None and nxt <= now
    if status == LM.PROCESSING:
        lu = _aware(locked_until)
        return lu is None or lu < now
    return False


def _select(cur: Any, direction: str, limit: int, now: datetime, only_id: int | None) -> dict[int, tuple[str, str]]:
    """Pick eligible rows: ``{id: (entity_key, status)}`` in id order.

    Scans open rows in id order (windows of :data:`WINDOW`): the first open row of an entity is
    eligible when due and no ``error`` row of its entity precedes it; the following rows of the
    entity are eligible while each is due (a busy entity is batched in one claim). An entity
    whose run breaks is blocked for the rest of the claim. Other entities are not affected.
    """
    chosen: dict[int, tuple[str, str]] = {}
    running: set[str] = set()
    blocked: set[str] = set()
    errors: dict[str, int] = {}
    last_id, scanned = 0, 0
    while len(chosen) < limit and scanned < SCAN_BUDGET:
        only = "AND id = %s" if only_id is not None else ""
        cur.execute(_WINDOW_SQL.format(only=only), [direction, last_id, *([only_id] if only_id else []), WINDOW])
        rows = cur.fetchall()
        if not rows:
            break
        scanned += len(rows)
        last_id = rows[-1][0]
        fresh = list({r[1] for r in rows} - running - blocked)
        for i in range(0, len(fresh), 500):
            part = fresh[i : i + 500]
            cur.execute(_ERRORS_SQL.format(keys=", ".join(["%s"] * len(part))), [direction, *part])
            errors.update({k: int(v) for k, v in cur.fetchall()})
        for row_id, key, status, next_at, locked_until in rows:
            if key in blocked:
                continue
            if (key in errors and errors[key] < row_id) or len(chosen) >= limit:
                blocked.add(key)
                continue
            if not _is_due(status, next_at, locked_until, now):
                blocked.add(key)
                continue
            if only_id is not None:  # a single row: it must be the first open row of its entity
                cur.execute(_EARLIER_SQL, [direction, key, row_id])
                if cur.fetchone():
                    return {}
            chosen[row_id] = (key, status)
            running.add(key)
        if only_id is not None:
            break
    return chosen


def _claim(direction: str, limit: int, *, only_id: int | None = None) -> list[Claimed]:
    """Atomically claim up to ``limit`` eligible rows of ``direction`` (see :func:`_select`)."""
    queue = envconfig.current().queue
    pg = connection.vendor == "postgresql"
    with transaction.atomic(), connection.cursor() as cur:
        if pg:  # claims of one direction are serialized (short); rows are locked with SKIP LOCKED
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK[direction]])
        now = timezone.now()
        chosen = _select(cur, direction, limit, now, only_id)
        if not chosen:
            return []
        if pg:
            marks = ", ".join(["%s"] * len(chosen))
            cur.execute(f"SELECT id FROM {_T} WHERE id IN ({marks}) ORDER BY id FOR UPDATE SKIP LOCKED", list(chosen))  # noqa: S608
            locked = {r[0] for r in cur.fetchall()}
            gone: set[str] = set()
            for row_id in sorted(chosen):  # a row someone else holds keeps its entity's later rows back
                key = chosen[row_id][0]
                if row_id not in locked or key in gone:
                    gone.add(key)
                    del chosen[row_id]
            if not chosen:
                return []
        token = now + timedelta(seconds=queue.lease_seconds)
        ids = sorted(chosen)
        marks = ", ".join(["%s"] * len(ids))
        # Outbound: the claim counts the attempt (a send may happen any time after it); a row that is
        # released unsent gets its count back (_release). Inbound counts when the outcome is recorded.
        counted = 1 if direction == LM.OUT else 0
        cur.execute(
            f"UPDATE {_T} SET status = 'processing', locked_until = %s, updated_at = %s, attempts = attempts + %s "  # noqa: S608
            f"WHERE id IN ({marks}) AND status IN ('new', 'retry', 'processing')",
            [_dt(token), _dt(now), counted, *ids],
        )
        cur.execute(_CLAIMED_SQL.format(ids=marks), [*ids, _dt(token)])
        rows = cur.fetchall()
    return [
        Claimed(
            id=r[0], direction=r[1], topic=r[2], message_id=r[3], kind=r[4], entity_key=r[5], payload=r[6],
            attempts=r[7] - counted, created_at=_aware(r[8]) or now, prev_status=chosen[r[0]][1], token=token,
        )
        for r in rows
    ]


def _finish(c_id: int, token: datetime, **fields: Any) -> bool:
    """Conditional update of a claimed row (still ours: processing with our token); True if done."""
    cols = ", ".join(f"{k} = %s" for k in fields)
    values = [_dt(v) if isinstance(v, datetime) else v for v in fields.values()]
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {_T} SET {cols} WHERE id = %s AND status = 'processing' AND locked_until = %s",  # noqa: S608
            [*values, c_id, _dt(token)],
        )
        return bool(cur.rowcount)


def _release(rows: Sequence[Claimed]) -> None:
    """Give unprocessed claims back (still ours only): they become due again at once, with the
    attempt count they had before the claim."""
    if not rows:
        return
    now = _dt(timezone.now())
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(
            f"UPDATE {_T} SET status = %s, attempts = %s, locked_until = NULL, updated_at = %s "  # noqa: S608
            "WHERE id = %s AND status = 'processing' AND locked_until = %s",
            [(LM.RETRY if c.attempts else LM.NEW, c.attempts, now, c.id, _dt(c.token)) for c in rows],
        )


# ------------------------------------------------------------------------------- processing


class _ClaimLost(Exception):
    """Our lease was taken over by another worker: roll back, do not finish the row."""


def _replayed(c: Claimed, attempts: int, replayed: Mapping[int, datetime]) -> bool:
    """Finish ``c`` as ``ignored`` when its exact body was applied before and pruned since (replay)."""
    before = replayed.get(c.id)
    if before is None:
        return False
    done = timezone.now()
    reason = f"replay of a message received {before.isoformat()} and applied then; not applied again"
    with transaction.atomic():
        _finish(c.id, c.token, status=LM.IGNORED, attempts=attempts, locked_until=None, updated_at=done,
                processed_at=done, last_error=reason)
    log.warning("inbound #%d %s: %s", c.id, c.topic, reason)
    return True


def _process_inbound(
    c: Claimed, queue: envconfig.QueueConfig, replayed: Mapping[int, datetime] | None = None
) -> str | None:
    """Run the handler of one claimed inbound row; returns the new status (None: claim lost).

    Success: the handler's writes and the ``complete`` update commit in one transaction, the
    update conditional on our claim token (else everything rolls back). Failure: the handler's
    transaction rolls back and the failure is recorded in a second one.
    """
    route = registry.inbound_route(c.topic)
    attempts = c.attempts + 1
    error: BaseException
    try:
        if route is None:
            raise PermanentError(f"no enabled module handles {c.topic}")
        try:
            params = inbox.decode_params(c.payload)
        except ValueError as e:
            raise InvalidPayload(str(e)) from None
        message = registry.InboundMessage(c.id, c.topic, c.message_id, params, attempts, c.created_at)
        if _replayed(c, attempts, replay.applied_among({c.id: c.payload}) if replayed is None else replayed):
            return LM.IGNORED
        with transaction.atomic():
            with time_limit(queue.message_time_limit):
                result = route.handler(message)
            done = timezone.now()
            if not _finish(
                c.id, c.token, status=LM.COMPLETE, attempts=attempts, locked_until=None, updated_at=done, processed_at=done,
                last_error="", result=_result_json(result),
            ):
                raise _ClaimLost
        return LM.COMPLETE
    except _ClaimLost:
        log.warning("inbound #%d: claim lost (lease expired and taken over); rolled back", c.id)
        return None
    except MessageError as e:
        error = e
    except TimeLimitExceeded as e:
        error = RetryLater(str(e))
    except Exception as e:  # noqa: BLE001 - a handler bug is recorded on the message and retried
        log.exception("inbound #%d %s: handler raised", c.id, c.topic)
        error = e
    done = timezone.now()
    fields: dict[str, Any] = {"attempts": attempts, "locked_until": None, "updated_at": done}
    fields.update(_failure(error, attempts, queue, done))
    with transaction.atomic():
        if not _finish(c.id, c.token, **fields):
            log.warning("inbound #%d: claim lost before the failure was recorded", c.id)
            return None
    log.warning("inbound #%d %s attempt %d failed → %s: %s", c.id, c.topic, attempts, fields["status"], fields["last_error"])
    return str(fields["status"])


def _result_json(result: Any) -> str:
    if result is None:
        return ""
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class _Sent:
    """A delivered message whose outcome is not recorded yet."""

    claim: Claimed
    message: registry.OutboundMessage
    result: Any


_COMPLETE_SQL = (
    f"UPDATE {_T} SET status = %s, processed_at = %s, last_error = '', result = %s, locked_until = NULL, "  # noqa: S608
    "updated_at = %s WHERE id = %s AND status = 'processing' AND locked_until = %s"
)


def _run_sent_hooks(sent: Sequence[_Sent]) -> dict[int, str]:
    """Run the ``on_sent``/``on_sent_many`` hooks of ``sent`` (in order, runs of one method at a
    time); returns ``{log id: error}`` of the messages whose hook failed (their writes rolled back)."""
    failed: dict[int, str] = {}
    start = 0
    while start < len(sent):
        topic = sent[start].claim.topic
        stop = start
        while stop < len(sent) and sent[stop].claim.topic == topic:
            stop += 1
        run, start = sent[start:stop], stop
        route = registry.outbound_route(topic)
        if route is None or (route.on_sent_many is None and route.on_sent is None):
            continue
        many, hook = route.on_sent_many, route.on_sent

        def call(items: Sequence[_Sent], many: registry.SentManyHook | None = many, hook: Any = hook) -> None:
            if many is not None:
                many([(s.message, s.result) for s in items])
            else:
                for s in items:
                    hook(s.message, s.result)

        if len(run) > 1:
            try:
                with transaction.atomic():
                    call(run)
                continue
            except Exception:  # noqa: BLE001 - find the failing message(s) one by one below
                log.info("outbound %s: on_sent for %d messages failed; calling it per message", topic, len(run))
        for s in run:
            try:
                with transaction.atomic():
                    call([s])
            except Exception as e:  # noqa: BLE001 - the OMS has it; record the hook failure, never resend
                log.exception("outbound #%d %s: on_sent hook failed", s.claim.id, topic)
                failed[s.claim.id] = f"delivered, but on_sent failed: {type(e).__name__}: {e}"[:4000]
    return failed


def _record_sent(sent: Sequence[_Sent], token: datetime) -> dict[int, str | None]:
    """Mark delivered messages ``complete`` and run their hooks, in one transaction; returns their
    new statuses (None: claim lost — then nothing is recorded for that message)."""
    if not sent:
        return {}
    done = timezone.now()
    at, tok = _dt(done), _dt(token)
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.executemany(_COMPLETE_SQL, [(LM.COMPLETE, at, _result_json(s.result), at, s.claim.id, tok) for s in sent])
                if cur.rowcount != len(sent):
                    raise _ClaimLost
            failed = _run_sent_hooks(sent)
            if failed:
                with connection.cursor() as cur:
                    cur.executemany(f"UPDATE {_T} SET status = %s, last_error = %s WHERE id = %s",  # noqa: S608
                                    [(LM.ERROR, error, log_id) for log_id, error in failed.items()])
    except _ClaimLost:
        if len(sent) == 1:
            log.warning("outbound #%d: claim lost while sending (lease too short?)", sent[0].claim.id)
            return {sent[0].claim.id: None}
        out: dict[int, str | None] = {}
        for s in sent:  # rare: some leases were taken over; record the others one by one
            out.update(_record_sent([s], token))
        return out
    return {s.claim.id: LM.ERROR if s.claim.id in failed else LM.COMPLETE for s in sent}


def _record_failure(c: Claimed, token: datetime, message: registry.OutboundMessage, error: BaseException,
                    queue: envconfig.QueueConfig) -> str | None:
    """Record a failed send (``retry`` with backoff or ``error``) and run ``on_failed``; None: claim lost."""
    route = registry.outbound_route(c.topic)
    done = timezone.now()
    fields: dict[str, Any] = {"locked_until": None, "updated_at": done}
    fields.update(_failure(error, message.attempts, queue, done))
    with transaction.atomic():
        if not _finish(c.id, token, updated_at=done):
            log.warning("outbound #%d: claim lost while sending (lease too short?)", c.id)
            return None
        log.warning("outbound #%d %s attempt %d failed → %s: %s", c.id, c.topic, message.attempts, fields["status"],
                    fields["last_error"])
        if route is not None and route.on_failed is not None:
            try:
                with transaction.atomic():
                    route.on_failed(message, str(fields["last_error"]), fields["status"] == LM.RETRY)
            except Exception:  # noqa: BLE001 - a hook bug must not lose the status update
                log.exception("outbound #%d %s: on_failed hook failed", c.id, c.topic)
        LM.objects.filter(pk=c.id).update(**fields)
    return str(fields["status"])


def _send_one(c: Claimed, queue: envconfig.QueueConfig) -> tuple[registry.OutboundMessage, Any, BaseException | None]:
    """Send one claimed outbound row: ``(message for the hooks, OMS result, error or None)``."""
    from mcom.service_bus.client import get_client

    route = registry.outbound_route(c.topic)
    error: BaseException | None = None
    result: Any = None
    params: dict[str, Any] = {}
    kind = c.kind or (route.kind if route else "")
    try:
        loaded = json.loads(c.payload)
        if not isinstance(loaded, dict):
            raise InvalidPayload("stored params are not a JSON object")
        params = loaded
        with time_limit(queue.message_time_limit):
            result = get_client().send(kind, c.topic, params, message_id=c.message_id)
    except (MessageError, OmsError) as e:
        error = e
    except ValueError as e:  # unknown kind, payload not JSON
        error = PermanentError(str(e))
    except TimeLimitExceeded as e:
        error = RetryLater(str(e))
    except envconfig.ConfigError as e:
        error = RetryLater(str(e))
    return registry.OutboundMessage(c.id, c.topic, c.message_id, c.entity_key, params, c.attempts + 1), result, error


def _renew(ids: Sequence[int], token: datetime, queue: envconfig.QueueConfig) -> tuple[datetime, set[int]]:
    """Extend the lease of our claimed rows ``ids``: ``(new token, ids still ours)``."""
    now = timezone.now()
    renewed = now + timedelta(seconds=queue.lease_seconds)
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"UPDATE {_T} SET locked_until = %s, updated_at = %s "  # noqa: S608
            f"WHERE id IN ({marks}) AND status = 'processing' AND locked_until = %s",
            [_dt(renewed), _dt(now), *ids, _dt(token)],
        )
        if cur.rowcount == len(ids):
            return renewed, set(ids)
        cur.execute(f"SELECT id FROM {_T} WHERE id IN ({marks}) AND status = 'processing' AND locked_until = %s",  # noqa: S608
                    [*ids, _dt(renewed)])
        return renewed, {r[0] for r in cur.fetchall()}


def _send_batch(batch: Sequence[Claimed], queue: envconfig.QueueConfig) -> dict[int, str | None]:
    """Send a claimed outbound batch in id order; returns the new status of each attempted row
    (None: claim lost). Rows not attempted (stop requested, entity held back) are released."""
    statuses: dict[int, str | None] = {}
    if not batch:
        return statuses
    token = batch[0].token  # one claim: one token for the whole batch (renewals keep it shared)
    pending: list[_Sent] = []
    pending_keys: set[str] = set()
    failed_keys: set[str] = set()  # entities whose earlier row of this batch did not complete
    lost: set[int] = set()
    renew_below = max(queue.lease_seconds / 2, queue.message_time_limit + 1.0)

    def record() -> None:
        recorded = _record_sent(pending, token)
        statuses.update(recorded)
        failed_keys.update(s.claim.entity_key for s in pending if recorded[s.claim.id] != LM.COMPLETE)
        pending.clear()
        pending_keys.clear()

    for i, c in enumerate(batch):
        if _stop.is_set():
            record()
            _release([replace(r, token=token) for r in batch[i:] if r.id not in lost])
            break
        if c.entity_key in pending_keys:  # its earlier row must be recorded first (its hook may fail)
            record()
        if c.entity_key in failed_keys:  # an earlier row of this entity failed in this batch
            _release([replace(c, token=token)])
            continue
        if (token - timezone.now()).total_seconds() < renew_below:
            ours = [s.claim.id for s in pending] + [r.id for r in batch[i:] if r.id not in lost]
            token, kept = _renew(ours, token, queue)
            lost.update(set(ours) - kept)
            for s in [s for s in pending if s.claim.id in lost]:
                log.warning("outbound #%d: claim lost before its delivery was recorded", s.claim.id)
                statuses[s.claim.id] = None
                pending.remove(s)
        if c.id in lost:
            log.warning("outbound #%d: claim lost; skipped", c.id)
            statuses[c.id] = None
            failed_keys.add(c.entity_key)
            continue
        message, result, error = _send_one(c, queue)
        if error is None:
            pending.append(_Sent(c, message, result))
            pending_keys.add(c.entity_key)
            continue
        record()  # earlier successes first: hooks run in send order
        statuses[c.id] = _record_failure(c, token, message, error, queue)
        failed_keys.add(c.entity_key)
    record()
    return statuses


def tick(direction: str, limit: int | None = None) -> int:
    """Claim one batch of ``direction`` and process it; returns how many messages were attempted."""
    queue = envconfig.current().queue
    batch = _claim(direction, min(limit or queue.batch_size, queue.batch_size))
    if direction == LM.OUT:
        return sum(1 for status in _send_batch(batch, queue).values() if status is not None)
    done = 0
    failed_keys: set[str] = set()
    replayed = replay.applied_among({c.id: c.payload for c in batch})  # one query per batch
    for i, c in enumerate(batch):
        if _stop.is_set():
            _release(batch[i:])
            break
        if c.entity_key in failed_keys:  # an earlier row of this entity failed in this batch
            _release([c])
            continue
        status = _process_inbound(c, queue, replayed)
        if status is not None:
            done += 1
        if status != LM.COMPLETE:
            failed_keys.add(c.entity_key)
    return done


def _drain(direction: str, limit: int | None, max_seconds: float | None) -> int:
    total = 0
    deadline = time.monotonic() + max_seconds if max_seconds is not None else None
    while not _stop.is_set():
        if limit is not None and total >= limit:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        n = tick(direction, None if limit is None else limit - total)
        if n == 0:
            break
        total += n
    return total


def process_inbound(limit: int | None = None, *, max_seconds: float | None = None) -> int:
    """Process due inbound messages (up to ``limit``) until none is due; returns how many were attempted."""
    return _drain(LM.IN, limit, max_seconds)


def _bus_configured() -> bool:
    try:
        envconfig.current().require_service_bus()
    except envconfig.ConfigError as e:
        log.info("outbound messages wait: %s", e)
        return False
    return True


def send_outbound(limit: int | None = None, *, max_seconds: float | None = None) -> int:
    """Send due outbound messages (up to ``limit``); returns how many were attempted.

    Does nothing (returns 0) while ``[service_bus]`` is incomplete: the rows wait untouched.
    """
    if not _bus_configured():
        return 0
    return _drain(LM.OUT, limit, max_seconds)


def run_until_idle(max_seconds: float = 60.0) -> int:
    """Process both directions until nothing is due (or ``max_seconds``); returns messages attempted."""
    deadline = time.monotonic() + max_seconds
    total = 0
    while not _stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        n = process_inbound(max_seconds=left)
        n += send_outbound(max_seconds=max(deadline - time.monotonic(), 0.001))
        total += n
        if n == 0:
            break
    return total


def send_now(log_id: int) -> bool:
    """Send outbound row ``log_id`` now if it is due and first of its entity; True when delivered.

    Used after commit by the synchronous order mode. On failure the row follows the usual retry
    rules (cron picks it up); returns False also when the row is not eligible or the bus is not
    configured.
    """
    if not _bus_configured():
        return False
    claimed = _claim(LM.OUT, 1, only_id=log_id)
    if not claimed:
        return False
    return _send_batch(claimed, envconfig.current().queue).get(log_id) == LM.COMPLETE


def _get_for_update(log_id: int) -> LM:
    try:
        return LM.objects.select_for_update().get(pk=log_id)
    except LM.DoesNotExist:
        raise LookupError(f"message #{log_id} does not exist") from None


def _in_flight(msg: LM, now: datetime) -> bool:
    return msg.status == LM.PROCESSING and msg.locked_until is not None and msg.locked_until > now


def retry(log_id: int) -> LM:
    """Make message ``log_id`` due now (status ``retry``). Raises ``LookupError``/``ValueError`` (in flight)."""
    now = timezone.now()
    with transaction.atomic():
        msg = _get_for_update(log_id)
        if _in_flight(msg, now):
            raise ValueError(f"message #{log_id} is being processed right now")
        msg.status, msg.next_attempt_at, msg.locked_until, msg.updated_at = LM.RETRY, now, None, now
        msg.save(update_fields=["status", "next_attempt_at", "locked_until", "updated_at"])
    return msg


def ignore(log_id: int) -> LM:
    """Mark message ``log_id`` ``ignored`` (never processed; releases its entity). Raises like :func:`retry`."""
    now = timezone.now()
    with transaction.atomic():
        msg = _get_for_update(log_id)
        if _in_flight(msg, now):
            raise ValueError(f"message #{log_id} is being processed right now")
        msg.status, msg.locked_until, msg.updated_at = LM.IGNORED, None, now
        msg.save(update_fields=["status", "locked_until", "updated_at"])
    return msg
