"""`serve` and `cron:run`: web (uvicorn + the ASGI app) and its message workers (``mcom worker``).

Self-healing (issue 16):

- ``cron:run --loop`` survives database restarts and lost connections: a pass that fails on the
  connection closes it and the loop retries with backoff (1 s doubling to 30 s), logging once when
  the outage starts and once when the database is back (:class:`mcom.service_bus.cron.Outage`).
- ``serve`` supervises its worker children (``mcom worker``, :mod:`mcom.cli.worker`; ``--workers N``):
  when a child dies (crash, ``kill -9``) it is reaped and
  started again with backoff, and the log says why. The child also gets SIGTERM when ``serve``
  itself dies (``PR_SET_PDEATHSIG`` on Linux), so it never outlives its parent.
- SIGTERM and SIGINT to ``serve`` stop uvicorn and then the children (SIGTERM; each finishes the
  message in hand and gives back its claims), waiting at most ``[queue] lease_seconds`` before
  SIGKILL. uvicorn re-raises the signal it caught after shutting down; ``serve``'s own handler
  turns that into an exception so the cleanup always runs.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

import click

from mcom.cli.base import CommandError, needs_django, setup_django

log = logging.getLogger("mcom.serve")

#: backoff between restarts of a worker child that keeps dying; reset after it ran this long
RESTART_MIN_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
HEALTHY_SECONDS = 60.0
_PR_SET_PDEATHSIG = 1


@click.command("cron:run")
@click.option("--force", is_flag=True, help="Run every job now, due or not")
@click.option("--job", "only", help="Run only this job")
@click.option("--loop", is_flag=True, help="Repeat every [cron] interval_seconds until stopped (used by serve)")
@click.option("--parent-pid", type=int, hidden=True, help="Stop when this process (serve) dies")
@needs_django
def cron_run(force: bool, only: str | None, loop: bool, parent_pid: int | None) -> None:
    """One pass of every due cron job (safe when two passes overlap)."""
    from django.db import DatabaseError

    from mcom import envconfig
    from mcom.service_bus import cron, registry, worker

    if only and only not in {j.name for j in registry.cron_jobs()}:
        raise CommandError(f"unknown or disabled cron job {only!r}")
    outage = cron.Outage("cron worker")
    with worker.stop_on_signals():
        _die_with_parent(parent_pid)
        while True:
            started = time.monotonic()
            try:
                runs = cron.run_due(force=force, only=only)
            except DatabaseError as e:
                if not loop or not cron.is_connection_error(e):
                    raise
                _sleep(outage.failed(e), worker.stop_requested)
                if worker.stop_requested():
                    return
                continue
            outage.recovered()
            if not loop:
                click.echo(cron.summary(runs))
                failed = [r for r in runs if not r.ok]
                if failed:
                    raise CommandError(f"{len(failed)} job(s) failed: {', '.join(r.name for r in failed)}")
                return
            # quiet when idle: only passes that processed messages or had a failure are printed
            if any(not r.ok or (isinstance(r.result, int) and r.result > 0) for r in runs):
                click.echo(cron.summary(runs))
            interval = envconfig.current().cron.interval_seconds
            _sleep(interval - (time.monotonic() - started), worker.stop_requested)
            if worker.stop_requested():
                return


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep up to ``seconds``, waking early when ``stop()`` turns true."""
    end = time.monotonic() + seconds
    while not stop() and time.monotonic() < end:
        time.sleep(min(0.1, max(end - time.monotonic(), 0)))


def _die_with_parent(parent: int | None) -> None:
    """In a child started by ``serve`` (``--parent-pid``): get SIGTERM when ``serve`` dies (Linux)."""
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return  # serve's own cleanup still stops the child
    if os.getppid() != parent:  # serve died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class WorkerSupervisor:
    """Runs ``mcom worker`` as a child process and starts it again whenever it dies."""

    def __init__(self, stop_timeout: float, args: tuple[str, ...] = ("worker",)) -> None:
        self.stop_timeout = stop_timeout
        self.args = args
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "mcom.cli.main", *self.args,
                                 "--parent-pid", str(os.getpid())], env=dict(os.environ))

    def start(self) -> WorkerSupervisor:
        with self._lock:
            self._proc = self._spawn()
        self._thread.start()
        return self

    def _watch(self) -> None:
        delay = RESTART_MIN_SECONDS
        started = time.monotonic()
        while not self._stopping.wait(0.5):
            with self._lock:
                proc = self._proc
                code = proc.poll() if proc is not None else None  # poll() reaps: no zombie
            if proc is None or code is None:
                continue
            lived = time.monotonic() - started
            if lived >= HEALTHY_SECONDS:
                delay = RESTART_MIN_SECONDS
            reason = _describe(code)
            log.warning("worker (pid %d) %s after %.0f s; restarting it in %.0f s", proc.pid, reason, lived, delay)
            click.echo(f"mcom serve: worker (pid {proc.pid}) {reason}; restarting in {delay:.0f} s", err=True)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = self._spawn()
                self.restarts += 1
            log.info("worker restarted (pid %d, restart %d)", self._proc.pid, self.restarts)
            started = time.monotonic()
            delay = min(delay * 2, RESTART_MAX_SECONDS)

    def stop(self) -> None:
        """Stop supervising, then stop the child: SIGTERM, SIGKILL after ``stop_timeout`` seconds."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker (pid %d) did not stop within %.0f s; killing it", proc.pid, self.stop_timeout)
            proc.kill()
            proc.wait()


class _Stopped(Exception):
    """SIGTERM/SIGINT reached ``serve`` (after uvicorn, if it was serving, shut down)."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


#: the former name (``serve`` ran ``cron:run --loop`` before ``mcom worker`` existed)
CronSupervisor = WorkerSupervisor


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Message-worker processes (mcom worker: inbound, outbound and cron lanes)")
@click.option("--no-worker", is_flag=True, help="Run no message worker (run `mcom worker` elsewhere)")
@click.option("--no-cron", is_flag=True, hidden=True, help="Former name of --no-worker")
@click.option("--web-workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Web (uvicorn) processes")
def serve(host: str, port: int, workers: int, no_worker: bool, no_cron: bool, web_workers: int) -> None:
    """Serve the admin, the REST API and the inbound endpoint, and run the message worker.

    uvicorn (httptools + uvloop) serves mcom.asgi; `mcom worker` runs in supervised child processes
    (inbound, outbound and cron lanes, woken at once by new messages) that are restarted when they
    die. SIGTERM or Ctrl-C stops everything.
    """
    import uvicorn

    from mcom import envconfig

    setup_django()
    count = 0 if (no_worker or no_cron) else workers
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    supervisors: list[WorkerSupervisor] = []
    try:
        stop_timeout = float(envconfig.current().queue.lease_seconds)
        for _ in range(count):
            supervisors.append(WorkerSupervisor(stop_timeout=stop_timeout).start())
        click.echo(f"mcom serving on http://{host}:{port} ({web_workers} web worker{'s' if web_workers > 1 else ''}, "
                   f"{count or 'no'} message worker{'s' if count != 1 else ''}). Ctrl-C stops.")
        uvicorn.run(
            "mcom.asgi:application",
            host=host,
            port=port,
            workers=web_workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
    except _Stopped:
        pass
    finally:
        # a second signal during the cleanup must not cut it short
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            stoppers = [threading.Thread(target=s.stop) for s in supervisors]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    click.echo("mcom serve stopped.")


COMMANDS: list[click.Command] = [serve, cron_run]
