"""`mcom` commands of the sales module: ``oms:orders:sync [LIMIT]``."""

from __future__ import annotations

import click

from mcom.cli.base import CommandError, needs_django

MAX_REASONS = 20


def parse_limit(raw: str | None) -> int | None:
    """``LIMIT`` → a positive whole number or None (all). Raises :class:`CommandError` (one line)."""
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise CommandError(f"LIMIT must be a positive whole number, got {raw!r}") from None
    if value < 1:
        raise CommandError(f"LIMIT must be a positive whole number, got {raw!r}")
    return value


@click.command("oms:orders:sync", context_settings={"ignore_unknown_options": True})
@click.argument("limit", required=False, metavar="[LIMIT]")
@needs_django
def orders_sync(limit: str | None) -> None:
    """Send the orders that were not exported to the OMS (failed, never sent or still queued) now.

    All of them, or the oldest LIMIT (a positive whole number). Exits non-zero when any order could
    not be sent.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mcom.sales import export

    count = parse_limit(limit)
    with Progress(
        TextColumn("[bold]Sending orders"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("sync", total=None, last="")

        def on_total(total: int) -> None:
            if total:
                bar.update(task, total=total)
            else:  # nothing to send: no empty 0/0 bar
                bar.update(task, visible=False)

        def on_progress(increment_id: str, ok: bool) -> None:
            bar.update(task, advance=1, last=f"{increment_id} {'sent' if ok else 'failed'}")

        report = export.sync_orders(limit=count, on_total=on_total, on_progress=on_progress)

    if not report.sent and not report.failed:
        click.echo("No orders to send.")
    else:
        click.echo(f"Sent {len(report.sent)} order{'s' if len(report.sent) != 1 else ''}, "
                   f"failed {len(report.failed)}.")
    for increment_id, reason in report.failed[:MAX_REASONS]:
        click.echo(f"  failed {increment_id}: {reason.splitlines()[0] if reason else 'unknown error'}", err=True)
    if len(report.failed) > MAX_REASONS:
        click.echo(f"  … and {len(report.failed) - MAX_REASONS} more", err=True)
    if report.skipped:
        stores = sorted({reason for _, reason in report.skipped})
        click.echo(f"Not exportable: {len(report.skipped)} order(s) — " + "; ".join(stores), err=True)
    if report.failed:
        raise CommandError(f"{len(report.failed)} order(s) could not be sent to the OMS")


COMMANDS: list[click.Command] = [orders_sync]
