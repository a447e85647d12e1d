"""Hourly activity kept apart from the message log, so pruning the log keeps the dashboard's history.

:func:`roll_up` counts the log's rows of the last hours (per hour and direction, and those in
``error``) into :class:`~mcom.observability.models.HourlyActivity`, never lowering a count. It runs
as a cron job every minute, before every prune (``service_bus.prune.before_prune``) and when the
dashboard is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from mcom.service_bus import prune, registry
from mcom.service_bus.models import LoggedMessage

from .models import HourlyActivity

#: hours of the log re-counted by each roll-up (older hours are final)
ROLL_UP_HOURS = 48


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def roll_up(hours: int | None = None, now: datetime | None = None) -> int:
    """Count the log of the last ``hours`` hours (all of it when None) into the hourly table.

    Returns how many (hour, direction) rows were written or raised. Idempotent; a count only rises.
    """
    now = now or timezone.now()
    qs = LoggedMessage.objects.all()
    if hours is not None:
        qs = qs.filter(created_at__gte=_hour(now) - timedelta(hours=hours - 1))
    rows = (
        qs.annotate(hour=TruncHour("created_at")).order_by().values("hour", "direction")
        .annotate(n=Count("id"), errors=Count("id", filter=Q(status=LoggedMessage.ERROR)))
    )
    counted = {(r["hour"], r["direction"]): (int(r["n"]), int(r["errors"])) for r in rows}
    if not counted:
        return 0
    with transaction.atomic():
        hours_seen = {h for h, _ in counted}
        existing = {
            (a.hour, a.direction): a
            for a in HourlyActivity.objects.select_for_update().filter(hour__in=hours_seen)
        }
        new: list[HourlyActivity] = []
        changed: list[HourlyActivity] = []
        for (hour, direction), (n, errors) in counted.items():
            row = existing.get((hour, direction))
            if row is None:
                new.append(HourlyActivity(hour=hour, direction=direction, messages=n, errors=errors, updated_at=now))
            elif n > row.messages or errors > row.errors:
                row.messages, row.errors, row.updated_at = max(n, row.messages), max(errors, row.errors), now
                changed.append(row)
        HourlyActivity.objects.bulk_create(new, ignore_conflicts=True)
        HourlyActivity.objects.bulk_update(changed, ["messages", "errors", "updated_at"])
        return len(new) + len(changed)


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    incoming: int
    outgoing: int
    errors: int


def hourly(hours: int = 24, now: datetime | None = None) -> list[HourBucket]:
    """The last ``hours`` hours (oldest first) from the hourly table, after a roll-up."""
    now = now or timezone.now()
    roll_up(min(hours, ROLL_UP_HOURS), now)
    last = _hour(now)
    first = last - timedelta(hours=hours - 1)
    slots = {first + timedelta(hours=i): [0, 0, 0] for i in range(hours)}
    for a in HourlyActivity.objects.filter(hour__gte=first, hour__lte=last):
        slot = slots.get(a.hour)
        if slot is None:
            continue
        slot[0 if a.direction == LoggedMessage.IN else 1] += a.messages
        slot[2] += a.errors
    return [HourBucket(start, *vals) for start, vals in slots.items()]


@registry.cron_job("observability.hourly_activity", every_seconds=60)
def hourly_activity_job() -> int:
    """Keep the dashboard's hourly counts (the log may be pruned later)."""
    return roll_up(ROLL_UP_HOURS)


def _before_prune() -> None:
    roll_up(None)


if _before_prune not in prune.before_prune:
    prune.before_prune.append(_before_prune)
