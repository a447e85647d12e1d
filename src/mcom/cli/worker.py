"""``mcom worker``: the message worker — inbound, outbound and cron lanes in one process
(:mod:`mcom.service_bus.lanes`), woken at once by new work (:mod:`mcom.service_bus.wake`).

``mcom serve`` runs one (``--workers N``: N) as supervised children; run it alone on other
hosts against the same PostgreSQL to add workers (claims use ``SKIP LOCKED`` and keep the
per-entity order; wake-ups travel by ``LISTEN``/``NOTIFY``).
"""

from __future__ import annotations

import click

from mcom.cli.base import CommandError, needs_django


@click.command("worker")
@click.option("--only", default="inbound,outbound,cron", show_default=True,
              help="Lanes to run, comma-separated (e.g. --only cron for the order export beside a sender)")
@click.option("--parent-pid", type=int, hidden=True, help="Stop when this process (serve) dies")
@needs_django
def worker_cmd(only: str, parent_pid: int | None) -> None:
    """Process inbound and send outbound messages and run the cron jobs, until SIGTERM/SIGINT.

    Separate lanes (threads) so that inbound never waits behind a send pass and the cron jobs never
    hold messages back; new messages wake their lane at once, [worker] poll_seconds is the safety net.
    """
    from mcom.cli.serve import _die_with_parent
    from mcom.service_bus import lanes, worker

    try:
        names = lanes.parse_only(only)
    except ValueError as e:
        raise CommandError(str(e)) from None
    with worker.stop_on_signals():
        _die_with_parent(parent_pid)
        runner = lanes.Worker(names).start()
        click.echo(f"mcom worker: {', '.join(names)} lane{'s' if len(names) > 1 else ''} running. Ctrl-C stops.")
        try:
            runner.wait()
        finally:
            clean = runner.stop()
    if not clean:
        raise CommandError("a lane did not stop within [queue] lease_seconds")
    click.echo("mcom worker stopped.")


COMMANDS: list[click.Command] = [worker_cmd]
