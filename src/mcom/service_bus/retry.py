"""One retry rule for everything that is tried again: attempts → the next time, or give up.

Used by the worker (every message of the log, ``[queue]`` settings), the order export (a failed
export is retried by cron: :data:`mcom.sales.export.EXPORT_RETRY`) and the catalog export (pages
sent directly until the OMS looks down: :data:`mcom.catalog.export.PAGE_RETRY`).

By error class: a :class:`~mcom.service_bus.errors.MessageError` says itself whether trying again
can help (``retryable``: ``RetryLater`` and transient OMS errors yes, ``PermanentError``/
``InvalidPayload``/a rejected call no); a database ``DataError``/``IntegrityError`` raised by a
handler (a value no column can hold, a broken constraint) no: the same message fails the same way;
anything else (a bug, a time limit) is retried.

A :class:`Decision` that gives up says whether the cause was *transient* (the policy ran out of
attempts on a retryable error: transport, 5xx, 429, unknown outcome, ``RetryLater``, time limit):
the message log records it on the parked row, and ``service_bus.requeue_parked`` re-queues such
rows once the OMS answers again (:mod:`mcom.service_bus.recovery`). A permanent refusal never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DataError, IntegrityError

from mcom import envconfig
from mcom.service_bus.errors import MessageError

MAX_REASON = 4000


def retryable(error: BaseException) -> bool:
    """Whether trying ``error``'s operation again can succeed (see the module docstring)."""
    if isinstance(error, MessageError):
        return bool(getattr(error, "retryable", True))
    return not isinstance(error, (DataError, IntegrityError))


def describe(error: BaseException) -> str:
    """``Type: message`` of ``error``, bounded to what ``last_error`` columns hold."""
    return f"{type(error).__name__}: {error}"[:MAX_REASON]


@dataclass(frozen=True)
class Decision:
    """After a failed attempt: try again at ``retry_at``, or give up (``retry_at`` None), with the reason.

    ``transient``: the error was retryable (given up only because the attempts ran out), so the
    parked message may succeed later without a change (see the module docstring)."""

    reason: str
    retry_at: datetime | None
    transient: bool = False

    @property
    def will_retry(self) -> bool:
        return self.retry_at is not None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff ``base_seconds * 2**(attempts-1)`` capped at ``max_seconds``; give up after
    ``max_attempts`` failed attempts (None: never give up on a retryable error)."""

    base_seconds: float
    max_seconds: float
    max_attempts: int | None = None

    @classmethod
    def from_queue(cls, queue: envconfig.QueueConfig) -> RetryPolicy:
        """The message log's policy (``[queue] backoff_base_seconds``, ``backoff_max_seconds``, ``max_attempts``)."""
        return cls(queue.backoff_base_seconds, queue.backoff_max_seconds, queue.max_attempts)

    def delay(self, attempts: int) -> timedelta:
        """Wait before the next attempt after ``attempts`` failed attempts."""
        exp = min(max(attempts - 1, 0), 32)
        return timedelta(seconds=float(min(self.base_seconds * (2**exp), self.max_seconds)))

    def exhausted(self, attempts: int) -> bool:
        """True when ``attempts`` failed attempts are all this policy allows."""
        return self.max_attempts is not None and attempts >= self.max_attempts

    def after(self, error: BaseException, attempts: int, now: datetime) -> Decision:
        """What to do after attempt number ``attempts`` failed with ``error``."""
        reason = describe(error)
        if not retryable(error):
            return Decision(reason, None)
        if self.exhausted(attempts):
            return Decision(f"gave up after {attempts} attempts: {reason}"[:MAX_REASON], None, transient=True)
        return Decision(reason, now + self.delay(attempts), transient=True)
