"""``mcom worker``: one process, separate lanes — inbound, outbound and cron — each a thread with
its own database connection, so inbound never waits behind a send pass, outbound never behind
inbound, and the cron jobs (order export, catalog, prune, …) run beside both.

- The inbound lane runs :func:`mcom.service_bus.worker.process_inbound`, the outbound lane
  :func:`~mcom.service_bus.worker.send_outbound` (nothing while the integration is disabled),
  each a pass of up to :data:`~mcom.service_bus.jobs.PASS_SECONDS`; with nothing to do a lane
  sleeps until it is woken (:mod:`mcom.service_bus.wake`: NOTIFY / datagram of an insert) or
  ``[worker] poll_seconds`` passed (the safety net, and how a retry whose backoff ended is found).
- The cron lane runs every due job except the two message jobs (:data:`LANE_JOBS`), every
  ``[cron] interval_seconds``; ``cron:run`` alone (system cron) still runs them all.
- Every lane survives database outages as ``cron:run --loop`` does (:class:`~mcom.service_bus.cron.Outage`:
  backoff, one log line when the outage starts and one when it ends), and an unexpected error
  of a pass is logged and the lane goes on.
- Readiness: the message lanes record their passes as the heartbeat ``/readyz`` reads
  (``last_finished_at`` of the message jobs, :func:`~mcom.service_bus.cron.beat`, at most every
  :data:`HEARTBEAT_SECONDS`); the cron lane's jobs record theirs as before.
- Stop (:meth:`Worker.stop`, SIGTERM/SIGINT in the command): every lane finishes the message in
  hand, gives back its other claims and ends; connections are closed at thread end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from mcom import envconfig
from mcom.service_bus import cron, integration, jobs, wake, worker

log = logging.getLogger("mcom.service_bus.lanes")

INBOUND, OUTBOUND, CRON = "inbound", "outbound", "cron"
LANES: tuple[str, ...] = (INBOUND, OUTBOUND, CRON)
#: what the inbound and outbound lanes do: the cron lane of a worker leaves these jobs out
LANE_JOBS = frozenset({"service_bus.process_inbound", "service_bus.send_outbound"})
HEARTBEAT_SECONDS = 10.0


def parse_only(text: str) -> tuple[str, ...]:
    """``"inbound,cron"`` → the lanes in their order; ``ValueError`` naming an unknown lane."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LANES]
    if unknown or not names:
        raise ValueError(f"unknown lane(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(LANES)}")
    return tuple(n for n in LANES if n in names)


def _inbound() -> int:
    return worker.process_inbound(max_seconds=jobs.PASS_SECONDS)


def _outbound() -> int:
    if not integration.enabled():
        return 0
    return worker.send_outbound(max_seconds=jobs.PASS_SECONDS)


def _cron() -> int:
    runs = cron.run_due(exclude=LANE_JOBS)
    if any(not r.ok or (isinstance(r.result, int) and r.result > 0) for r in runs):
        log.info("%s", cron.summary(runs))
    return len(runs)


class Lane:
    """One lane: a thread repeating ``work`` (a pass; returns how much it did)."""

    def __init__(self, name: str, work: Callable[[], int], *, direction: str | None, beat_job: str | None,
                 interval: Callable[[], float]) -> None:
        self.name = name
        self.work = work
        self.direction = direction
        self.beat_job = beat_job
        self.interval = interval
        self.event = wake.subscribe(direction) if direction is not None else threading.Event()
        self.passes = 0
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name=f"mcom-lane-{name}", daemon=True)

    def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds`` regardless of wake-ups (a database outage's backoff), until stop."""
        end = time.monotonic() + seconds
        while not worker.stop_requested() and time.monotonic() < end:
            time.sleep(min(0.1, max(end - time.monotonic(), 0)))

    def _run(self) -> None:
        from django.db import DatabaseError, connections

        outage = cron.Outage(f"worker {self.name} lane")
        beaten = 0.0
        try:
            while not worker.stop_requested():
                self.event.clear()  # set again by any insert from now on: nothing is missed
                started = time.monotonic()
                try:
                    done = self.work()
                    if self.beat_job is not None and time.monotonic() - beaten >= HEARTBEAT_SECONDS:
                        cron.beat(self.beat_job)
                        beaten = time.monotonic()
                except DatabaseError as e:
                    if cron.is_connection_error(e):
                        self._sleep(outage.failed(e))
                        continue
                    self.errors += 1
                    log.exception("worker %s lane: pass failed", self.name)
                    done = 0
                except Exception:  # noqa: BLE001 - the lane goes on; the error is logged
                    self.errors += 1
                    log.exception("worker %s lane: pass failed", self.name)
                    done = 0
                else:
                    outage.recovered()
                self.passes += 1
                if worker.stop_requested():
                    break
                if self.direction is None:  # cron: every interval
                    self.event.wait(max(self.interval() - (time.monotonic() - started), 0.0))
                elif done == 0:
                    self.event.wait(self.interval())
        finally:
            if self.direction is not None:
                wake.unsubscribe(self.direction, self.event)
            connections.close_all()


class Worker:
    """The lanes of one ``mcom worker`` process and its wake-up listener."""

    def __init__(self, only: Sequence[str] = LANES) -> None:
        config = envconfig.current()
        poll = config.worker.poll_seconds

        def poll_interval() -> float:
            return poll

        def cron_interval() -> float:
            return envconfig.current().cron.interval_seconds

        self.lanes: list[Lane] = []
        for name in only:
            if name == INBOUND:
                self.lanes.append(Lane(INBOUND, _inbound, direction=wake.IN, beat_job="service_bus.process_inbound",
                                       interval=poll_interval))
            elif name == OUTBOUND:
                self.lanes.append(Lane(OUTBOUND, _outbound, direction=wake.OUT, beat_job="service_bus.send_outbound",
                                       interval=poll_interval))
            elif name == CRON:
                self.lanes.append(Lane(CRON, _cron, direction=None, beat_job=None, interval=cron_interval))
        self.listener: wake.Listener | None = None

    def lane(self, name: str) -> Lane:
        return next(lane for lane in self.lanes if lane.name == name)

    def start(self) -> Worker:
        """Start the lanes (a stop requested by an earlier worker of this process is forgotten)."""
        from django.db import connections

        worker.clear_stop()
        if any(lane.direction is not None for lane in self.lanes):
            self.listener = wake.Listener(dict(connections["default"].settings_dict)).start()
        for lane in self.lanes:
            lane.thread.start()
        return self

    def alive(self) -> bool:
        return all(lane.thread.is_alive() for lane in self.lanes)

    def wait(self) -> None:
        """Until a stop is requested (SIGTERM/SIGINT through :func:`worker.stop_on_signals`)."""
        while not worker.stop_requested() and self.alive():
            time.sleep(0.2)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every lane (each finishes the message in hand and gives its claims back) and the
        listener; True when every thread ended within ``timeout`` (default ``[queue] lease_seconds``)."""
        worker.request_stop()
        for lane in self.lanes:
            lane.event.set()
        deadline = time.monotonic() + (timeout if timeout is not None else envconfig.current().queue.lease_seconds)
        for lane in self.lanes:
            lane.thread.join(timeout=max(deadline - time.monotonic(), 0.01))
        if self.listener is not None:
            self.listener.stop()
        return not any(lane.thread.is_alive() for lane in self.lanes)
