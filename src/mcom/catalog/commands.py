"""`mcom` commands of the catalog module: full-catalog export and shipping-method sync."""

from __future__ import annotations

from typing import Any

import click

from mcom.cli.base import CommandError, needs_django


def _status_line(task: Any) -> str:
    from django.utils import timezone

    parts = [f"Catalog export #{task.pk}: {task.display_status}", f"{task.processed}/{task.total} ({task.percent:.0f}%)"]
    if task.sent:
        parts.append(f"{task.sent} delivered")
    if task.started_at:
        parts.append(f"started {timezone.localtime(task.started_at):%Y-%m-%d %H:%M:%S}")
    if task.finished_at:
        parts.append(f"finished {timezone.localtime(task.finished_at):%Y-%m-%d %H:%M:%S}")
    if task.cancel_requested and task.status == task.RUNNING:
        parts.append("cancel requested")
    line = ", ".join(parts)
    if task.error:
        line += f"\n  {task.error}"
    if task.display_status == "interrupted":
        line += "\n  The exporting process stopped; `mcom oms:catalog-export:run` resumes it (--restart starts over)."
    return line


@click.command("oms:catalog-export:status")
@needs_django
def export_status() -> None:
    """Show the running or pending full-catalog export task (or the last one)."""
    from mcom.catalog import services

    task = services.current_task()
    if task is None:
        click.echo("No catalog export has been run yet.")
        return
    click.echo(_status_line(task))


class _RunCommand(click.Command):
    """Rejects ``-s`` together with ``--schedule-only`` by looking at the raw arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        raw = args[: args.index("--")] if "--" in args else args
        if "-s" in raw and "--schedule-only" in raw:
            raise click.UsageError(
                "use either -s (short form) or --schedule-only (long form), not both", ctx=ctx
            )
        return super().parse_args(ctx, args)


def _run_with_progress(restart: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mcom.catalog import services

    with Progress(
        TextColumn("[bold]Catalog export"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        bar_id = bar.add_task("export", total=None, rate="")

        def progress(task: Any) -> None:
            bar.update(bar_id, total=task.total or None, completed=task.processed, rate=f"{task.sent} sent")

        return services.run_export(progress=progress, restart=restart, requested_by="cli")


@click.command("oms:catalog-export:run", cls=_RunCommand)
@click.option("-s", "--schedule-only", "schedule_only", is_flag=True, help="Only schedule the export; cron runs it.")
@click.option("--cancel", is_flag=True, help="Cancel the pending or running export.")
@click.option("--restart", is_flag=True, help="Restart an interrupted export from the first product.")
@needs_django
def export_run(schedule_only: bool, cancel: bool, restart: bool) -> None:
    """Run the pending export (or a new one) now, schedule one for cron (-s), or cancel one (--cancel)."""
    from mcom.catalog import services

    if schedule_only and cancel:
        raise CommandError("--cancel cannot be combined with -s/--schedule-only")
    try:
        if cancel:
            task = services.cancel_export()
            if task.status == task.CANCELLED:
                click.echo(f"Catalog export #{task.pk} cancelled ({task.processed}/{task.total} exported).")
            else:
                click.echo(f"Cancel requested for running catalog export #{task.pk}; it stops after its current batch.")
            return
        if schedule_only:
            task = services.schedule_export(requested_by="cli")
            click.echo(f"Catalog export #{task.pk} scheduled; cron will run it.")
            return
        task = _run_with_progress(restart)
    except services.ExportError as e:
        raise CommandError(str(e)) from None
    if task.status == task.COMPLETE:
        click.echo(f"Catalog export #{task.pk} complete: {task.processed} item(s) exported, {task.sent} delivered now.")
        if task.processed > task.sent:
            click.echo(f"{task.processed - task.sent} message(s) wait in the message log; cron delivers them.")
    else:
        click.echo(_status_line(task))


@click.command("oms:shipping-methods:sync")
@needs_django
def shipping_sync() -> None:
    """Queue every active shipping method as an OMS SKU (flat rate = STANDARD)."""
    from mcom.catalog import services

    added = services.discover_shipping_methods()
    ids = services.queue_shipping_methods(discover=False)
    click.echo(f"Queued {len(ids)} shipping method(s) for the OMS ({added} newly discovered).")


COMMANDS: list[click.Command] = [export_status, export_run, shipping_sync]
