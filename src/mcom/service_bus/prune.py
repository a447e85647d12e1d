"""Pruning of the message log: finished rows older than N days are deleted in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from mcom.service_bus import replay
from mcom.service_bus.models import LoggedMessage

log = logging.getLogger("mcom.service_bus.prune")

BATCH = 1000

#: called before anything is deleted (the hourly activity roll-up keeps the dashboard's history)
before_prune: list[Callable[[], object]] = []


@dataclass(frozen=True)
class PruneSettings:
    """Whether the daily job prunes, and how many days of finished messages it keeps."""

    enabled: bool = True
    days: int = 30


_source: list[Callable[[], PruneSettings]] = [PruneSettings]


def use_settings(source: Callable[[], PruneSettings]) -> None:
    """Where the settings come from (read at each run): the admin config registers its reader at
    app-ready (:mod:`mcom.adminui.apps`); the transport itself reads no store configuration."""
    _source[0] = source


def configured_days() -> int:
    """Days kept (admin config ``mcom/message_log/prune_days``, default 30)."""
    return _source[0]().days


def enabled() -> bool:
    """Whether the daily job prunes (admin config ``mcom/message_log/prune_enabled``, default yes)."""
    return _source[0]().enabled


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
