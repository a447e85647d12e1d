"""Cron: run the registered jobs (``registry.cron_job``) that are due, one pass at a time.

Each job has a row in ``mcom_cron_schedule`` (:class:`CronJobState`). A pass claims a due job
with one conditional ``UPDATE`` (``next_run_at <= now`` and not locked, or lock expired), runs
it, then records the outcome and the next run. Two overlapping passes (two ``mcom cron:run``,
or ``serve`` plus a system cron) therefore never run the same job at the same time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from mcom.service_bus import registry
from mcom.service_bus.models import CronJobState

log = logging.getLogger("mcom.service_bus.cron")

#: a job running longer than this is considered dead (its process was killed) and may run again
JOB_LOCK_SECONDS = 15 * 60


@dataclass(frozen=True)
class JobRun:
    """The outcome of one job run in a pass."""

    name: str
    ok: bool
    seconds: float
    result: Any = None
    error: str = ""


def _ensure_states(names: list[str], now: datetime) -> None:
    existing = set(CronJobState.objects.filter(name__in=names).values_list("name", flat=True))
    missing = [CronJobState(name=n, next_run_at=now) for n in names if n not in existing]
    if missing:
        CronJobState.objects.bulk_create(missing, ignore_conflicts=True)


def _claim(name: str, now: datetime, force: bool) -> bool:
    qs = CronJobState.objects.filter(name=name).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    if not force:
        qs = qs.filter(next_run_at__lte=now)
    return qs.update(locked_until=now + timedelta(seconds=JOB_LOCK_SECONDS), last_started_at=now) == 1


def run_due(now: datetime | None = None, force: bool = False, only: str | None = None) -> list[JobRun]:
    """Run every due job of the enabled modules once (``force``: every job, due or not).

    ``only`` restricts the pass to one job name. A job's exception is logged and recorded in
    ``last_error``; it does not stop the pass. Returns what ran, in registration order.
    """
    jobs = [j for j in registry.cron_jobs() if only is None or j.name == only]
    now = now or timezone.now()
    _ensure_states([j.name for j in jobs], now)
    runs: list[JobRun] = []
    for job in jobs:
        if not _claim(job.name, now, force):
            continue
        started = time.monotonic()
        result: Any = None
        error = ""
        try:
            result = job.run()
        except Exception as e:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("cron job %s failed", job.name)
            error = f"{type(e).__name__}: {e}"[:4000]
        finished = timezone.now()
        CronJobState.objects.filter(name=job.name).update(
            locked_until=None,
            last_finished_at=finished,
            next_run_at=now + timedelta(seconds=job.every_seconds) if job.every_seconds > 0 else finished,
            last_error=error,
        )
        runs.append(JobRun(job.name, not error, time.monotonic() - started, result, error))
    return runs


def summary(runs: list[JobRun]) -> str:
    """One line per pass: ``ran 3 jobs: a (12, 0.02 s), b (error: …)``."""
    if not runs:
        return "no job was due"
    parts = []
    for r in runs:
        if r.ok:
            parts.append(f"{r.name} ({r.result if r.result is not None else 'ok'}, {r.seconds:.2f} s)")
        else:
            parts.append(f"{r.name} (error: {r.error.splitlines()[0][:200]})")
    return f"ran {len(runs)} job{'s' if len(runs) != 1 else ''}: " + ", ".join(parts)
