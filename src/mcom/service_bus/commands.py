"""`mcom` commands of the service_bus module: register, queue prune/retry/ignore/list/process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


_DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"]
_STATUSES = ["new", "processing", "complete", "retry", "error", "ignored"]


def _bulk_options(fn: Any) -> Any:
    """The selection options shared by ``oms:queue:retry`` and ``oms:queue:ignore``."""
    options = [
        click.argument("log_ids", nargs=-1, type=click.IntRange(min=1)),
        click.option("--status", "statuses", multiple=True, type=click.Choice(_STATUSES),
                     help="Only messages in this status (repeatable; default: error, or any status with LOG_IDs)."),
        click.option("--direction", type=click.Choice(["in", "out"])),
        click.option("--topic", default="", help="JSON-RPC method, exactly."),
        click.option("--entity", default="", help="Entity key, exactly (e.g. order:000000004, stock:1)."),
        click.option("--error-contains", default="", help="Text in the last error (case-insensitive)."),
        click.option("--after", type=click.DateTime(_DATE_FORMATS), help="Created at or after (UTC; YYYY-MM-DD[ HH:MM:SS])."),
        click.option("--before", type=click.DateTime(_DATE_FORMATS), help="Created before (UTC)."),
        click.option("--all", "everything", is_flag=True, help="Allow a change without any filter but --status."),
        click.option("--dry-run", is_flag=True, help="Only count what would change."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _selection(log_ids: tuple[int, ...], statuses: tuple[str, ...], direction: str | None, topic: str, entity: str,
               error_contains: str, after: datetime | None, before: datetime | None, everything: bool) -> Any:
    from mcom.service_bus.selection import MessageFilter

    if after is not None and before is not None and after >= before:
        raise CommandError("--after must be earlier than --before")
    selection = MessageFilter(
        ids=log_ids, statuses=statuses or (() if log_ids else ("error",)), direction=direction or "",
        topic=topic.strip(), entity=entity.strip(), error_contains=error_contains,
        after=after.replace(tzinfo=UTC) if after is not None else None,
        before=before.replace(tzinfo=UTC) if before is not None else None,
    )
    if not selection.narrows() and not everything:
        raise CommandError("no LOG_ID and no filter: name messages or filter them (--direction, --topic, --entity, "
                           "--error-contains, --after, --before), or pass --all to change every "
                           f"{'/'.join(selection.statuses)} message")
    return selection


def _bulk(verb: str, dry_run: bool, **kwargs: Any) -> None:
    from mcom.service_bus import log

    selection = _selection(**kwargs)
    change = log.bulk_retry if verb == "retry" else log.bulk_ignore
    outcome = change(selection, dry_run=dry_run)
    past = "queued for retry" if verb == "retry" else "ignored"
    n = outcome.changed
    text = f"{n} message{'s' if n != 1 else ''} {'would be ' if dry_run else ''}{past}"
    if dry_run:
        text += " (dry run: nothing changed)"
    if outcome.skipped:
        allowed = "/".join(log.RETRYABLE if verb == "retry" else log.IGNORABLE)
        text += f"; {outcome.skipped} skipped (not {allowed}, or being processed)"
    click.echo(text + ".")
    missing = sorted(set(selection.ids) - set(_existing(selection.ids)))
    if missing:
        click.echo(f"No such message: {', '.join(f'#{i}' for i in missing)}.", err=True)


def _existing(ids: Any) -> list[int]:
    from mcom.service_bus.models import LoggedMessage

    return list(LoggedMessage.objects.filter(pk__in=list(ids)).values_list("id", flat=True)) if ids else []


def _single(log_ids: tuple[int, ...], dry_run: bool, everything: bool, **filters: Any) -> bool:
    """One LOG_ID and nothing else: the single-message path (its own messages and errors)."""
    return len(log_ids) == 1 and not dry_run and not everything and not any(filters.values())


def _change(action: str, done: str, log_ids: tuple[int, ...], dry_run: bool, everything: bool,
            **filters: Any) -> None:
    """``action`` (retry/ignore) one message by id, as before, or many by selection (:func:`_bulk`)."""
    from mcom.service_bus import worker

    if not _single(log_ids, dry_run, everything, **filters):
        _bulk(action, dry_run, log_ids=log_ids, everything=everything, **filters)
        return
    try:
        msg = worker.retry(log_ids[0]) if action == "retry" else worker.ignore(log_ids[0])
    except (LookupError, ValueError) as e:
        raise CommandError(str(e)) from None
    click.echo(f"Message #{msg.pk} ({msg.direction} {msg.topic}) {done}.")


@click.command("oms:queue:retry")
@_bulk_options
@needs_django
def retry_cmd(log_ids: tuple[int, ...], dry_run: bool, everything: bool, **filters: Any) -> None:
    """Retry messages now (status retry; cron processes them): LOG_IDs and/or filters.

    Without LOG_IDs only messages in status error are retried unless --status says otherwise;
    a call without any filter needs --all. Messages being processed are skipped.
    """
    _change("retry", "queued for retry", log_ids, dry_run, everything, **filters)


@click.command("oms:queue:ignore")
@_bulk_options
@needs_django
def ignore_cmd(log_ids: tuple[int, ...], dry_run: bool, everything: bool, **filters: Any) -> None:
    """Mark messages ignored (never processed; later messages of their entity proceed): LOG_IDs and/or filters.

    Same selection as oms:queue:retry (default status error without LOG_IDs; --all for no filter).
    """
    _change("ignore", "ignored", log_ids, dry_run, everything, **filters)


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
