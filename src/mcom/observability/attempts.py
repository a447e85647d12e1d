"""The attempt history of logged messages: every failed attempt with its full error trace.

Filled by the listener registered on :data:`mcom.service_bus.events.attempt_listeners` (the
worker calls ``events.attempt_failed`` when it records a failed attempt); shown in the message
detail of the admin. Traces are redacted of configured secrets before they are stored.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import events

from .models import MessageAttempt

#: attempts kept per message (the oldest ones go first)
MAX_PER_MESSAGE = 50


def _redact(text: str) -> str:
    cfg = envconfig.cached()
    for secret in cfg.secrets() if cfg is not None else []:
        text = text.replace(secret, "***")
    return text


def record(attempt: events.Attempt) -> MessageAttempt:
    """Store one failed attempt (redacted); keeps at most :data:`MAX_PER_MESSAGE` per message."""
    row = MessageAttempt.objects.create(
        message_id=attempt.log_id, attempt=attempt.attempt, status=attempt.status[:16],
        error=_redact(attempt.error), trace=_redact(attempt.trace), created_at=timezone.now(),
    )
    old = list(MessageAttempt.objects.filter(message_id=attempt.log_id).order_by("-id")
               .values_list("id", flat=True)[MAX_PER_MESSAGE:])
    if old:
        MessageAttempt.objects.filter(pk__in=old).delete()
    return row


def history(log_id: int) -> list[MessageAttempt]:
    return list(MessageAttempt.objects.filter(message_id=log_id).order_by("id"))


def prune(days: int) -> int:
    """Delete attempts older than ``days`` days; returns how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = MessageAttempt.objects.filter(created_at__lt=cutoff).delete()
    return deleted


if record not in events.attempt_listeners:
    events.attempt_listeners.append(record)
