"""Cron: run the registered jobs (``registry.cron_job``) that are due, one pass at a time.

Each job has a row in ``mcom_cron_schedule`` (:class:`CronJobState`). A pass claims a due job
with one conditional ``UPDATE`` (``next_run_at <= now`` and not locked, or lock expired), runs
it, then records the outcome and the next run. Two overlapping passes (two ``mcom cron:run``,
or ``serve`` plus a system cron) therefore never run the same job at the same time.

The lock (``locked_until``) lasts ``[queue] lease_seconds``, like a claimed message, and a
heartbeat thread renews it while the job runs (every third of the lease). A worker that was
killed therefore holds its jobs for at most one lease; another pass then runs them again.
A lost database connection is not a job failure: it propagates (``OperationalError`` /
``InterfaceError``) so that the loop reconnects (:func:`is_connection_error`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Q
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import registry
from mcom.service_bus.models import CronJobState

log = logging.getLogger("mcom.service_bus.cron")



def lock_seconds() -> float:
    """How long a claimed job stays locked without a heartbeat: ``[queue] lease_seconds``."""
    return float(envconfig.current().queue.lease_seconds)


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the database went away (restart, network) rather than a job bug."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if connection.vendor == "sqlite":
        return any(m in str(error).lower() for m in ("unable to open", "disk i/o", "readonly database"))
    try:
        return not connection.is_usable()  # a deadlock or a cancelled statement leaves it usable
    except Exception:  # noqa: BLE001 - no connection at all
        return True


class Outage:
    """One loop's view of database outages: logs once when one starts and once when it ends, closes the
    broken connections and says how long to wait before the next try (1 s doubling to 30 s)."""

    MIN_SECONDS = 1.0
    MAX_SECONDS = 30.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.failures = 0

    def failed(self, error: BaseException) -> float:
        """Record a failed try (the connection is closed); the seconds to wait before the next one."""
        from django.db import connections

        if self.since is None:
            self.since = time.monotonic()
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log.warning("%s: database unavailable (%s: %s); retrying with backoff until it is back",
                        self.what, type(error).__name__, first[:300])
        self.failures += 1
        for conn in connections.all(initialized_only=True):
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is dropped anyway
                conn.connection = None
        return float(min(self.MIN_SECONDS * 2 ** (self.failures - 1), self.MAX_SECONDS))

    def recovered(self) -> None:
        """A try succeeded: log the end of the outage, if there was one."""
        if self.since is None:
            return
        log.warning("%s: database reachable again after %.0f s (%d failed tries); processing resumed",
                    self.what, time.monotonic() - self.since, self.failures)
        self.since, self.failures = None, 0


class _Heartbeat:
    """Renews one job's lock every third of the lease while the job runs (its own DB connection)."""

    def __init__(self, name: str, token: datetime, seconds: float) -> None:
        self.name, self.token, self.seconds = name, token, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cron-heartbeat-{name}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=max(self.seconds, 5.0))

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(self.seconds / 3):
                renewed = timezone.now() + timedelta(seconds=self.seconds)
                try:
                    kept = CronJobState.objects.filter(name=self.name, locked_until=self.token).update(
                        locked_until=renewed)
                except Exception as e:  # noqa: BLE001 - the job goes on; its lock may expire early
                    log.warning("cron job %s: lock not renewed (%s)", self.name, type(e).__name__)
                    continue
                if kept:
                    self.token = renewed
                else:
                    log.warning("cron job %s: its lock was taken over (the lease expired)", self.name)
                    return
        finally:
            connections.close_all()


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


def _claim(name: str, now: datetime, force: bool, seconds: float) -> datetime | None:
    """Lock job ``name`` when it is due (or ``force``) and not locked; the lock value (token) or None."""
    qs = CronJobState.objects.filter(name=name).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    if not force:
        qs = qs.filter(next_run_at__lte=now)
    token = now + timedelta(seconds=seconds)
    return token if qs.update(locked_until=token, last_started_at=now) == 1 else None


def run_due(now: datetime | None = None, force: bool = False, only: str | None = None,
            exclude: frozenset[str] = frozenset()) -> list[JobRun]:
    """Run every due job of the enabled modules once (``force``: every job, due or not).

    ``only`` restricts the pass to one job name; ``exclude`` leaves jobs out (``mcom worker``'s cron
    lane: its inbound and outbound lanes do the message jobs' work). A job's exception is logged and recorded in
    ``last_error``; it does not stop the pass. A lost database connection propagates
    (:func:`is_connection_error`). Returns what ran, in registration order.
    """
    jobs = [j for j in registry.cron_jobs() if (only is None or j.name == only) and j.name not in exclude]
    now = now or timezone.now()
    _ensure_states([j.name for j in jobs], now)
    runs: list[JobRun] = []
    seconds = lock_seconds()
    for job in jobs:
        token = _claim(job.name, now, force, seconds)
        if token is None:
            continue
        started = time.monotonic()
        result: Any = None
        error = ""
        try:
            with _Heartbeat(job.name, token, seconds):
                result = job.run()
        except Exception as e:  # noqa: BLE001 - one failing job must not stop the others
            if is_connection_error(e):
                raise  # the database went away: the loop reconnects; the lock expires with the lease
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


def beat(name: str) -> None:
    """Record that the work of job ``name`` was just done outside a pass (a lane of ``mcom worker``):
    its ``last_finished_at`` is the heartbeat ``/readyz`` reads. The job's lock is left alone."""
    now = timezone.now()
    if not CronJobState.objects.filter(name=name).update(last_finished_at=now):
        _ensure_states([name], now)
        CronJobState.objects.filter(name=name).update(last_finished_at=now)


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
