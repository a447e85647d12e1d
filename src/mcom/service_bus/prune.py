"""Pruning of the message log: finished rows older than N days are deleted in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from mcom.service_bus import replay
from mcom.service_bus.models import LoggedMessage

log = logging.getLogger("mcom.service_bus.prune")

BATCH = 1000

#: called before anything is deleted (the hourly activity roll-up keeps the dashboard's history)
before_prune: list[Callable[[], object]] = []


def configured_days() -> int:
    """Store config ``mcom/message_log/prune_days`` (default 30)."""
    from mcom.commerce import config

    return int(config.get("mcom/message_log/prune_days"))


def enabled() -> bool:
    """Store config ``mcom/message_log/prune_enabled`` (default yes)."""
    from mcom.commerce import config

    return bool(config.get("mcom/message_log/prune_enabled"))


def prune(days: int | None = None) -> int:
    """Delete ``complete``/``ignored`` rows created more than ``days`` days ago; returns how many.

    ``days`` defaults to the configured ``prune_days``. Open rows (new, retry, processing, error)
    are never deleted. Deletes at most :data:`BATCH` ids per statement, one transaction each.
    Raises ``ValueError`` for a negative ``days``.
    """
    days = configured_days() if days is None else days
    if days < 0:
        raise ValueError("days must be 0 or more")
    for hook in list(before_prune):
        hook()
    cutoff = timezone.now() - timedelta(days=days)
    finished = LoggedMessage.objects.filter(status__in=LoggedMessage.FINISHED, created_at__lt=cutoff)
    total = 0
    while True:
        ids = list(finished.order_by("id").values_list("id", flat=True)[:BATCH])
        if not ids:
            break
        with transaction.atomic():
            doomed = LoggedMessage.objects.filter(pk__in=ids, status__in=LoggedMessage.FINISHED)
            # inbound: remember what was applied, so a replay after pruning is recognised
            replay.record(doomed.filter(direction=LoggedMessage.IN).values_list("topic", "payload", "created_at"))
            deleted, _ = doomed.delete()
        total += deleted
    forgotten = replay.prune_records()
    if total or forgotten:
        log.info("pruned %d finished messages older than %d days (%d replay records expired)", total, days, forgotten)
    return total


def prune_if_enabled() -> int:
    """The daily cron job: prune with the configured days when pruning is enabled."""
    if not enabled():
        return 0
    return prune()
