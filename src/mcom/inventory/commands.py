"""`mcom` commands of the inventory module: stock reset (developer mode) and OMS sources."""

from __future__ import annotations

import click

from mcom.cli.base import CommandError, needs_django

_STAGES = {"publish": "Publishing stock updates", "process": "Processing messages", "reindex": "Reindexing"}


@click.command("oms:stock:reset")
@needs_django
def stock_reset() -> None:
    """Developer mode only: empty the stock tables, publish quantity 100 for every product in
    every aggregate as incoming stock updates, process them and reindex."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from mcom.inventory import services

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as bar:
            ids: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in ids:
                    ids[stage] = bar.add_task(_STAGES.get(stage, stage), total=total or 1)
                bar.update(ids[stage], completed=done if total else 1, total=total or 1)

            result = services.reset_stock(progress=progress)
    except services.InventoryError as e:
        raise CommandError(str(e)) from None
    click.echo(
        f"Stock reset: removed {result.deleted_items} stock item(s) and {result.deleted_statuses} index row(s); "
        f"published {result.messages} stock update message(s) (quantity 100) for {result.products} product(s) "
        f"in {result.aggregates} aggregate(s); {result.stock_items} stock item(s) now, "
        f"{result.in_stock} in stock after reindex."
    )
    if result.aggregates == 0:
        click.echo("No stock aggregates exist yet: link one to a store (or receive a snapshot from the OMS) first.")


@click.command("oms:sources:list")
@needs_django
def sources_list() -> None:
    """List the OMS sources (warehouses, stores) and the aggregates they belong to."""
    from rich.console import Console
    from rich.table import Table

    from mcom.inventory import services

    try:
        sources = services.search_sources()
    except services.InventoryError as e:
        raise CommandError(str(e)) from None
    if not sources:
        click.echo("The OMS reports no sources.")
        return
    table = Table("id", "name", "type", "aggregates", "location")
    for s in sources:
        table.add_row(s.id, s.name, s.type, ", ".join(s.aggregate_ids), ", ".join(p for p in (s.city, s.country_code) if p))
    Console(width=120).print(table)
    click.echo(f"{len(sources)} source(s).")


COMMANDS: list[click.Command] = [stock_reset, sources_list]
