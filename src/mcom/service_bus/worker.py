"""The message-log worker: processes inbound and sends outbound messages, in order, with retries.

A tick (:func:`tick`) claims a batch of due rows of one direction and processes them in id
order. Claiming and every status change are done by :mod:`mcom.service_bus.log` (the log's one
writer: PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` under a transaction advisory lock, SQLite a
conditional ``UPDATE``; open rows scanned in id order through the partial index ``mcom_lmq_open``).
A claimed row is ``processing`` with a lease (``locked_until``, config ``[queue] lease_seconds``)
whose value is the claim's token: a worker that was killed leaves its rows to be taken over when
the lease expires, and a worker only finishes a row whose token is still its own.

Per-entity order: a row is eligible only when no earlier row (lower id) with the same
``entity_key`` and direction is still open (``new``/``retry``/``processing``/``error``) — unless
that earlier row is claimed in the same batch just before it. A failed row therefore holds back
the later rows of its entity only; other entities proceed.

Inbound (:func:`_tick_inbound`): the handler runs in a savepoint together with the status
update, which is conditional on the claim token (exactly-once effect); the batch commits every
``[worker] commit_every`` messages or ``commit_seconds`` (a failure rolls back only its savepoint
and is recorded in the batch's transaction). Outbound: :mod:`mcom.service_bus.sender`
sends concurrently across entities (``[queue] send_concurrency`` requests in flight, one entity's
messages one after another) and records every outcome as it comes back — ``complete`` with the
``on_sent``/``on_sent_many`` hooks in one transaction, a failure with ``on_failed`` — before the
next message of that entity starts. The claim counts the attempt (``attempts + 1``, given back
when a claimed row is released unsent); leases are renewed while a pass runs. A send is
at-least-once by nature: a worker killed mid-pass leaves the requests it had in flight to be sent
again after the lease expires (message ids are stable; the OMS ignores duplicates).
Failures follow the :class:`~mcom.service_bus.retry.RetryPolicy` of ``[queue]``:
``PermanentError``/non-retryable OMS errors → ``error`` at once; ``RetryLater``, retryable OMS
errors, time limit and unexpected exceptions → ``retry`` after exponential backoff
(``backoff_base_seconds * 2**(attempts-1)``, capped by ``backoff_max_seconds``) until
``max_attempts``, then ``error`` with the reason.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import events, inbox, registry, replay, sender
from mcom.service_bus import log as message_log
from mcom.service_bus.errors import (
    InvalidPayload,
    MessageError,
    PermanentError,
    RetryLater,
    TimeLimitExceeded,
)
from mcom.service_bus.log import Claimed, ClaimLost
from mcom.service_bus.models import LoggedMessage as LM
from mcom.service_bus.retry import RetryPolicy

if TYPE_CHECKING:
    pass

log = logging.getLogger("mcom.service_bus.worker")

OPEN = LM.OPEN
_ClaimLost = ClaimLost
__all__ = ["Claimed", "TimeLimitExceeded", "ignore", "process_inbound", "request_stop", "retry", "run_until_idle",
           "send_messages", "send_now", "send_outbound", "stop_on_signals", "tick"]


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
    """Raise :class:`TimeLimitExceeded` in the block after ``seconds``: by ``SIGALRM`` in the main
    thread, by an asynchronous exception in other threads (the lanes of ``mcom worker``: raised at
    the thread's next Python instruction, so a call blocked in C — a socket read — ends first)."""
    if seconds <= 0:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        with _thread_time_limit(seconds):
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


class _Watchdog:
    """One thread per process raising :class:`TimeLimitExceeded` in the threads whose limit passed
    (``PyThreadState_SetAsyncExc``); a limit costs a dict entry, not a thread."""

    def __init__(self) -> None:
        import ctypes

        self._set = ctypes.pythonapi.PyThreadState_SetAsyncExc
        self._ctypes = ctypes
        self._cond = threading.Condition()
        self._limits: dict[int, tuple[float, type[BaseException]]] = {}  # thread id → (deadline, exception)
        self._thread: threading.Thread | None = None
        self._next = 0.0  # when the watchdog looks next

    def arm(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._cond:
            self._limits[threading.get_ident()] = (deadline, _exceeded(seconds))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mcom-time-limit", daemon=True)
                self._thread.start()
            if deadline < self._next:  # else the watchdog wakes up in time anyway
                self._cond.notify()

    def disarm(self) -> None:
        tid = threading.get_ident()
        with self._cond:
            if self._limits.pop(tid, None) is None:  # it fired: clear the exception if not delivered yet
                self._set(self._ctypes.c_ulong(tid), None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for tid, (deadline, exc) in list(self._limits.items()):
                    if deadline <= now:
                        del self._limits[tid]
                        self._set(self._ctypes.c_ulong(tid), self._ctypes.py_object(exc))
                self._next = min((d for d, _ in self._limits.values()), default=now + 60.0)
                self._cond.wait(max(self._next - now, 0.001))


_watchdog: _Watchdog | None = None
_watchdog_lock = threading.Lock()


@functools.lru_cache(maxsize=32)
def _exceeded(seconds: float) -> type[BaseException]:
    """The exception raised in a thread after ``seconds`` (its message names the limit)."""
    return type("TimeLimitExceeded", (TimeLimitExceeded,),
                {"__str__": lambda self: f"time limit of {seconds:g} s exceeded"})


@contextmanager
def _thread_time_limit(seconds: float) -> Iterator[None]:
    global _watchdog
    with _watchdog_lock:  # threads of a pool start at once: one watchdog per process
        if _watchdog is None:
            _watchdog = _Watchdog()
    _watchdog.arm(seconds)
    try:
        yield
    finally:
        _watchdog.disarm()


def policy(queue: envconfig.QueueConfig) -> RetryPolicy:
    """The retry policy of the message log (``[queue]``)."""
    return RetryPolicy.from_queue(queue)


def _claim(direction: str, limit: int, *, only_id: int | None = None) -> list[Claimed]:
    """Claim up to ``limit`` eligible rows of ``direction`` (:func:`mcom.service_bus.log.claim`)."""
    lease = envconfig.current().queue.lease_seconds
    return message_log.claim(direction, limit, lease_seconds=lease, ids=None if only_id is None else [only_id])


# ------------------------------------------------------------------------------- processing


def _replayed(c: Claimed, attempts: int, replayed: Mapping[int, datetime]) -> bool:
    """Finish ``c`` as ``ignored`` when its exact body was applied before and pruned since (replay)."""
    before = replayed.get(c.id)
    if before is None:
        return False
    reason = f"replay of a message received {before.isoformat()} and applied then; not applied again"
    with transaction.atomic():
        message_log.ignore_claimed(c, attempts=attempts, reason=reason)
    log.warning("inbound #%d %s: %s", c.id, c.topic, reason)
    return True


def _process_inbound(
    c: Claimed, queue: envconfig.QueueConfig, replayed: Mapping[int, datetime] | None = None,
    after: list[Callable[[], object]] | None = None,
) -> str | None:
    """Run the handler of one claimed inbound row; returns the new status (None: claim lost).

    Success: the handler's writes and the ``complete`` update commit in one transaction (a
    savepoint when :func:`tick` batches the commit), the update conditional on our claim token
    (else everything rolls back). Failure: the handler's transaction rolls back and the failure
    is recorded in a second one. ``after``: the operator events of a failure are appended there
    (run after the batch's commit) instead of being run at once.
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
            if not message_log.complete(c, attempts=attempts, result=result):
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
    decision = policy(queue).after(error, attempts, timezone.now())
    status = message_log.failed_status(decision)
    with transaction.atomic():
        if not message_log.fail(c, decision, attempts=attempts):
            log.warning("inbound #%d: claim lost before the failure was recorded", c.id)
            return None
    log.warning("inbound #%d %s attempt %d failed → %s: %s", c.id, c.topic, attempts, status, decision.reason)

    def event(reason: str = decision.reason, error: BaseException = error) -> object:
        return events.attempt_failed(log_id=c.id, direction=LM.IN, topic=c.topic, entity_key=c.entity_key,
                                     attempt=attempts, status=status, reason=reason, error=error)

    if after is None:
        event()
    else:
        after.append(event)
    return status


def tick(direction: str, limit: int | None = None) -> int:
    """Claim one batch of ``direction`` and process it; returns how many messages were attempted."""
    queue = envconfig.current().queue
    batch = _claim(direction, min(limit or queue.batch_size, queue.batch_size))
    if direction == LM.OUT:
        statuses = sender.send_claimed(batch, queue, stop=_stop.is_set, time_limit=time_limit)
        return sum(1 for status in statuses.values() if status is not None)
    return _tick_inbound(batch, queue)


def _tick_inbound(batch: Sequence[Claimed], queue: envconfig.QueueConfig) -> int:
    """Process a claimed inbound batch in id order, committing together: one transaction per
    ``[worker] commit_every`` messages or ``commit_seconds``, whichever comes first, each message
    in a savepoint of it (handler + ``complete``; a failure or a lost claim rolls back only its
    savepoint and the failure is recorded in the outer transaction). A failed row holds back the
    later rows of its entity in the batch (released); a lost connection commits nothing of the open
    chunk, whose claims then expire and are run again."""
    config = envconfig.current().worker
    done = 0
    failed_keys: set[str] = set()
    replayed = replay.applied_among({c.id: c.payload for c in batch})  # one query per batch
    i = 0
    while i < len(batch) and not _stop.is_set():
        after: list[Callable[[], object]] = []
        with transaction.atomic():
            started, in_chunk = time.monotonic(), 0
            while i < len(batch) and not _stop.is_set():
                c = batch[i]
                i += 1
                if c.entity_key in failed_keys:  # an earlier row of this entity failed in this batch
                    message_log.release([c])
                    continue
                status = _process_inbound(c, queue, replayed, after)
                if status is not None:
                    done += 1
                if status != LM.COMPLETE:
                    failed_keys.add(c.entity_key)
                in_chunk += 1
                if in_chunk >= config.commit_every or time.monotonic() - started >= config.commit_seconds:
                    break
        for event in after:  # operator events once the outcome is committed
            event()
    if i < len(batch):
        message_log.release(batch[i:])
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
    pipeline = sender.Pipeline(envconfig.current().queue, stop=_stop.is_set, time_limit=time_limit)
    deadline = time.monotonic() + max_seconds if max_seconds is not None else None
    statuses = pipeline.run(lambda n: _claim(LM.OUT, n), deadline=deadline, limit=limit)
    return sum(1 for status in statuses.values() if status is not None)


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
    statuses = sender.send_claimed(claimed, envconfig.current().queue, stop=_stop.is_set, time_limit=time_limit)
    return statuses.get(log_id) == LM.COMPLETE


def send_messages(log_ids: Sequence[int], *, give_up: RetryPolicy | None = None) -> dict[int, str | None]:
    """Send the outbound rows ``log_ids`` now, each if it is due and first of its entity, through the
    registered hooks; returns the new status of each attempted row (None: claim lost).

    ``give_up``: stop after that many failures in a row and leave the rest waiting (a page of a
    full export while the OMS is down). Rows not claimed stay for the worker. Raises
    ``envconfig.ConfigError`` while ``[service_bus]`` is incomplete (nothing is claimed then).
    """
    config = envconfig.current()
    config.require_service_bus()
    if not log_ids:
        return {}
    claimed = message_log.claim(LM.OUT, len(log_ids), lease_seconds=config.queue.lease_seconds, ids=log_ids)
    return sender.send_claimed(claimed, config.queue, give_up=give_up, stop=_stop.is_set, time_limit=time_limit)


def retry(log_id: int) -> LM:
    """Make message ``log_id`` due now (status ``retry``). Raises ``LookupError``/``ValueError`` (in flight)."""
    return message_log.retry(log_id)


def ignore(log_id: int) -> LM:
    """Mark message ``log_id`` ``ignored`` (never processed; releases its entity). Raises like :func:`retry`."""
    return message_log.ignore(log_id)
