"""`mcom` commands of the service_bus module: register, queue prune/retry/ignore/list/process."""

from __future__ import annotations

import click

from mcom.cli.base import CommandError, needs_django


@click.command("oms:service-bus:register")
@needs_django
def register_cmd() -> None:
    """Register (subscribe to the topics of the enabled modules) with the OMS bus now."""
    from mcom.service_bus import registration

    try:
        reg = registration.register(source="cli")
    except registration.RegistrationError as e:
        raise CommandError(f"registration failed: {e}") from None
    click.echo(f"Registered '{reg.application_id}' at {reg.url} ({len(reg.topics)} topics).")


@click.command("oms:queue:prune")
@click.option("--days", type=click.IntRange(min=0), help="Keep this many days (default: mcom/message_log/prune_days)")
@needs_django
def prune_cmd(days: int | None) -> None:
    """Delete finished (complete/ignored) message-log rows older than the configured days."""
    from mcom.service_bus import prune

    removed = prune.prune(days)
    click.echo(f"Removed {removed} message{'s' if removed != 1 else ''} from the message log.")


@click.command("oms:queue:retry")
@click.argument("log_id", type=int)
@needs_django
def retry_cmd(log_id: int) -> None:
    """Retry message LOG_ID now (its status becomes retry; cron processes it)."""
    from mcom.service_bus import worker

    try:
        msg = worker.retry(log_id)
    except (LookupError, ValueError) as e:
        raise CommandError(str(e)) from None
    click.echo(f"Message #{msg.pk} ({msg.direction} {msg.topic}) queued for retry.")


@click.command("oms:queue:ignore")
@click.argument("log_id", type=int)
@needs_django
def ignore_cmd(log_id: int) -> None:
    """Mark message LOG_ID ignored (it is never processed; later messages of its entity proceed)."""
    from mcom.service_bus import worker

    try:
        msg = worker.ignore(log_id)
    except (LookupError, ValueError) as e:
        raise CommandError(str(e)) from None
    click.echo(f"Message #{msg.pk} ({msg.direction} {msg.topic}) ignored.")


@click.command("oms:queue:list")
@click.option("--status", type=click.Choice(["new", "processing", "complete", "retry", "error", "ignored"]))
@click.option("--direction", type=click.Choice(["in", "out"]))
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@needs_django
def list_cmd(status: str | None, direction: str | None, limit: int) -> None:
    """List the latest message-log rows."""
    from mcom.service_bus.models import LoggedMessage

    qs = LoggedMessage.objects.order_by("-id")
    if status:
        qs = qs.filter(status=status)
    if direction:
        qs = qs.filter(direction=direction)
    rows = list(qs.values_list("id", "direction", "status", "attempts", "topic", "entity_key", "last_error")[:limit])
    if not rows:
        click.echo("No messages.")
        return
    for row_id, d, st, attempts, topic, key, err in rows:
        line = f"#{row_id:<7} {d:<3} {st:<10} {attempts:>2}x {topic} [{key}]"
        if err:
            line += f"  {err.splitlines()[0][:100]}"
        click.echo(line)


@click.command("oms:queue:process")
@click.option("--max-seconds", type=click.FloatRange(min=0.1), default=300.0, show_default=True)
@needs_django
def process_cmd(max_seconds: float) -> None:
    """Process inbound and send outbound messages now, until nothing is due (SIGTERM stops cleanly).

    While the integration is disabled only inbound messages are processed; outbound ones wait.

    A lost database connection (restart, network) is waited out with backoff within MAX_SECONDS;
    the claims of the interrupted pass expire with their lease.
    """
    import time

    from django.db import DatabaseError

    from mcom.service_bus import cron, integration, worker

    deadline = time.monotonic() + max_seconds
    outage = cron.Outage("oms:queue:process")
    n = 0
    with worker.stop_on_signals():
        while True:
            try:
                left_s = max(deadline - time.monotonic(), 0.1)
                if integration.enabled():
                    n += worker.run_until_idle(max_seconds=left_s)
                else:
                    click.echo("The integration is disabled: outbound messages stay queued (oms:integration:enable).")
                    n += worker.process_inbound(max_seconds=left_s)
                outage.recovered()
                break
            except DatabaseError as e:
                if not cron.is_connection_error(e):
                    raise
                wait = outage.failed(e)
                if outage.failures == 1:
                    click.echo("database unavailable; waiting for it to come back", err=True)
                left = deadline - time.monotonic()
                if left <= wait or worker.stop_requested():
                    raise CommandError(f"database unavailable for {outage.failures} tries "
                                       f"({type(e).__name__}); gave up after {max_seconds:g} s") from None
                end = time.monotonic() + wait
                while time.monotonic() < end and not worker.stop_requested():
                    time.sleep(0.1)
    click.echo(f"Processed {n} message{'s' if n != 1 else ''}.")


@click.command("oms:integration:disable")
@click.option("--reason", default="", help="Why (shown on the dashboard), at most 255 characters.")
@needs_django
def integration_disable_cmd(reason: str) -> None:
    """Disable the integration: nothing is sent to the OMS and deliveries are refused; the queue is kept."""
    import getpass

    from mcom.service_bus import integration

    state = integration.disable(by=f"cli:{getpass.getuser()}", reason=reason)
    click.echo(f"Integration disabled (since {state.since:%Y-%m-%d %H:%M:%S} UTC). Queued messages are kept."
               if state.since else "Integration disabled.")


@click.command("oms:integration:enable")
@needs_django
def integration_enable_cmd() -> None:
    """Enable the integration again: queued messages are sent by the next worker pass."""
    import getpass

    from mcom.service_bus import integration

    integration.enable(by=f"cli:{getpass.getuser()}")
    click.echo("Integration enabled.")


@click.command("oms:integration:status")
@needs_django
def integration_status_cmd() -> None:
    """Show whether the integration is enabled (and since when and by whom it is disabled)."""
    from mcom.service_bus import integration

    state = integration.state()
    if state.enabled:
        click.echo("Integration enabled.")
        return
    since = f" since {state.since:%Y-%m-%d %H:%M:%S} UTC" if state.since else ""
    click.echo(f"Integration disabled{since} by {state.by or '?'}" + (f": {state.reason}" if state.reason else "."))


COMMANDS: list[click.Command] = [register_cmd, prune_cmd, retry_cmd, ignore_cmd, list_cmd, process_cmd,
                                 integration_disable_cmd, integration_enable_cmd, integration_status_cmd]
