"""Operator-facing events of the transport: one log line each, Prometheus counters, listeners.

The worker and the endpoint call these at the moment something happens; nothing here writes the
message log. Counters live in the process that counts (web: ingest rejections; worker: attempts,
OMS errors, parked messages) and are exposed by ``/metrics`` of that process (docs/deployment.md).

Call sites:

- ``attempt_failed(...)`` — where the worker records a failed attempt (inbound or outbound), with the
  exception; it counts, logs ``message N parked: …`` when the status is ``error`` and hands the
  attempt with its full trace to the :data:`attempt_listeners` (the attempt history of the admin).
- ``ingest_rejected(reason)`` — every delivery the endpoint refuses.
- ``superseded(...)`` — :mod:`~mcom.service_bus.log` replaced a parked state message by a newer one.
- ``requeued(...)`` — the ``service_bus.requeue_parked`` pass re-queued transient parks (one line per pass).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from mcom.service_bus.errors import OmsError

log = logging.getLogger("mcom.service_bus.events")

MAX_TRACE = 20_000

ATTEMPTS_FAILED = Counter(
    "mcom_message_attempts_failed", "Failed processing/send attempts (this process)", ["direction", "outcome"]
)
OMS_ERRORS = Counter("mcom_oms_errors", "Failed calls to the OMS by error class (this process)", ["error_class"])
PARKED = Counter("mcom_messages_parked", "Messages parked in status error (this process)", ["direction"])
SUPERSEDED = Counter("mcom_messages_superseded", "Parked state messages replaced by a newer one (this process)",
                     ["direction"])
REQUEUED = Counter("mcom_messages_requeued", "Transient parks re-queued by cron (this process)", ["direction"])
INGEST_REJECTED = Counter("mcom_ingest_rejections", "Deliveries refused by the endpoint (this process)", ["reason"])

#: reason classes of refused deliveries (bounded label values)
_REJECTION_CLASSES: tuple[tuple[str, str], ...] = (
    ("signature", "signature"),
    ("malformed json", "parse_error"),
    ("integration", "integration_disabled"),
    ("not handled", "method_not_found"),
    ("params", "invalid_params"),
    ("too large", "too_large"),
)


@dataclass(frozen=True)
class Attempt:
    """One failed attempt of a message, as the history shows it."""

    log_id: int
    direction: str
    topic: str
    entity_key: str
    attempt: int
    status: str  # the status it left the message in: retry or error
    error: str  # one line (the message's last_error)
    trace: str  # the formatted exception, traceback included


AttemptListener = Callable[[Attempt], object]
attempt_listeners: list[AttemptListener] = []


def parked(log_id: int, topic: str, entity_key: str, reason: str, *, direction: str = "") -> None:
    """Log ``message N parked: reason`` (one line; the entity key lets a person follow the order)."""
    if direction:
        PARKED.labels(direction).inc()
    log.warning("message %d parked: %s [%s %s]", log_id, reason.splitlines()[0][:500] if reason else "?",
                topic, entity_key)


def superseded(log_id: int, by_id: int, topic: str, entity_key: str, reason: str, *, direction: str) -> None:
    """Log ``message N superseded by #M`` (a parked state message no longer holds its entity back)."""
    SUPERSEDED.labels(direction).inc()
    log.warning("message %d superseded by #%d (was parked: %s) [%s %s]", log_id, by_id,
                reason.splitlines()[0][:300] if reason else "?", topic, entity_key)


def requeued(direction: str, by_topic: dict[str, int], *, why: str, more: bool = False) -> None:
    """One line per re-queue pass and direction: how many transient parks were re-queued, by topic."""
    total = sum(by_topic.values())
    REQUEUED.labels(direction).inc(total)
    topics = ", ".join(f"{t} {n}" for t, n in sorted(by_topic.items(), key=lambda kv: (-kv[1], kv[0])))
    log.warning("re-queued %d parked %s message%s (%s): %s%s", total, "inbound" if direction == "in" else "outbound",
                "" if total == 1 else "s", why, topics, "; more next pass" if more else "")


def attempt_failed(*, log_id: int, direction: str, topic: str, entity_key: str, attempt: int, status: str,
                   reason: str, error: BaseException | None = None) -> Attempt:
    """A failed attempt: count it, log a parked message, notify the listeners; returns the attempt."""
    ATTEMPTS_FAILED.labels(direction, status).inc()
    if isinstance(error, OmsError):
        OMS_ERRORS.labels(type(error).__name__).inc()
    trace = "".join(traceback.format_exception(error))[-MAX_TRACE:] if error is not None else reason
    item = Attempt(log_id, direction, topic, entity_key[:191], attempt, status, reason[:4000], trace)
    if status == "error":
        parked(log_id, topic, entity_key, reason, direction=direction)
    for listener in list(attempt_listeners):
        try:
            listener(item)
        except Exception:  # noqa: BLE001 - history is best effort; the status update must not fail
            log.exception("attempt listener failed for message %d", log_id)
    return item


def rejection_class(reason: str) -> str:
    text = reason.lower()
    return next((cls for needle, cls in _REJECTION_CLASSES if needle in text), "invalid_request")


def ingest_rejected(reason: str) -> None:
    INGEST_REJECTED.labels(rejection_class(reason)).inc()
