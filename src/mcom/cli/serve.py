"""`serve` and `cron:run`: web (uvicorn + the ASGI app) and the cron worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from mcom.cli.base import CommandError, needs_django, setup_django


@click.command("cron:run")
@click.option("--force", is_flag=True, help="Run every job now, due or not")
@click.option("--job", "only", help="Run only this job")
@click.option("--loop", is_flag=True, help="Repeat every [cron] interval_seconds until stopped (used by serve)")
@needs_django
def cron_run(force: bool, only: str | None, loop: bool) -> None:
    """One pass of every due cron job (safe when two passes overlap)."""
    from mcom import envconfig
    from mcom.service_bus import cron, worker

    if only and only not in {j.name for j in cron.registry.cron_jobs()}:
        raise CommandError(f"unknown or disabled cron job {only!r}")
    with worker.stop_on_signals():
        while True:
            started = time.monotonic()
            runs = cron.run_due(force=force, only=only)
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
            while not worker.stop_requested() and time.monotonic() - started < interval:
                time.sleep(0.1)
            if worker.stop_requested():
                return


def _start_cron() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mcom.cli.main", "cron:run", "--loop"], env=dict(os.environ))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-cron", is_flag=True, help="Do not run the cron worker")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Web worker processes")
def serve(host: str, port: int, no_cron: bool, workers: int) -> None:
    """Serve the admin, the REST API and the inbound endpoint, and run the cron worker.

    uvicorn (httptools + uvloop) serves mcom.asgi; cron runs in a child process that passes
    every [cron] interval_seconds. Ctrl-C stops both.
    """
    import uvicorn

    setup_django()
    cron_proc = None if no_cron else _start_cron()
    click.echo(f"mcom serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}"
               f"{', cron running' if cron_proc else ', no cron'}). Ctrl-C stops.")
    try:
        uvicorn.run(
            "mcom.asgi:application",
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
    finally:
        if cron_proc is not None:
            _stop(cron_proc)


COMMANDS: list[click.Command] = [serve, cron_run]
