"""Commerce commands: ``sampledata:deploy``, ``api:token:*`` and ``indexer:reindex``."""

from __future__ import annotations

import time
from types import TracebackType

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mcom.cli.base import CommandError, needs_django


class RichReporter:
    """A :class:`mcom.commerce.sampledata.Reporter` drawing one rich progress bar per step."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def start(self, label: str, total: int) -> None:
        self.task = self.progress.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


@click.command("sampledata:deploy")
@click.option("--products", default=1000, show_default=True, type=click.IntRange(min=0), help="Products to upsert")
@click.option("--orders", default=50, show_default=True, type=click.IntRange(min=0), help="Orders to add")
@click.option("--stores", default=1, show_default=True, type=click.IntRange(min=1, max=100), help="Store views")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (same seed, same data)")
@click.option(
    "--sync/--no-sync", default=False, show_default=True,
    help="Run the catalog/order hooks (queue product sync once per 1,000 products). Default: no; "
    "export the catalog afterwards with `mcom oms:catalog-export:run`.",
)
@needs_django
def sampledata_deploy(products: int, orders: int, stores: int, seed: int, sync: bool) -> None:
    """Deploy realistic, deterministic sample data: stores, catalog, stock and pending orders.

    Re-running upserts the same products and stock and adds new orders.
    """
    from mcom.commerce import sampledata

    console = Console(stderr=False)
    started = time.monotonic()
    try:
        with RichReporter(console) as reporter:
            result = sampledata.deploy(
                products=products, orders=orders, stores=stores, seed=seed, sync=sync, report=reporter
            )
    except sampledata.SampleDataError as e:
        raise CommandError(str(e)) from None
    elapsed = time.monotonic() - started
    click.echo(
        f"Stores: {result.stores} (stock aggregates: {result.aggregates}); "
        f"products: {result.products_created} created, {result.products_updated} updated; "
        f"stock items: {result.stock_items}; stock index rows: {result.stock_status_rows}."
    )
    if result.orders:
        click.echo(f"Orders: {result.orders} placed ({result.first_increment_id} … {result.last_increment_id}).")
    else:
        click.echo("Orders: 0 placed.")
    click.echo(f"Done in {elapsed:.1f}s.")
    if not sync and (result.products_created or result.products_updated):
        click.echo("The OMS receives the sample products with a catalog export: "
                   "`mcom oms:catalog-export:run` or MCOM > Catalog export.")


@click.command("api:token:create")
@click.option("--name", required=True, help="A name for the token (who uses it)")
@needs_django
def token_create(name: str) -> None:
    """Create a REST API token and print it once (only its hash is stored)."""
    from mcom.commerce import tokens

    try:
        _, token = tokens.create_token(name=name)
    except tokens.TokenError as e:
        raise CommandError(str(e)) from None
    click.echo(token)
    click.echo(f"Token '{name}' created. Store it now: it is not shown again.", err=True)
    click.echo("Use it as: Authorization: Bearer <token>", err=True)


@click.command("api:token:list")
@needs_django
def token_list() -> None:
    """List REST API tokens (name, prefix, state, last use)."""
    from mcom.commerce.models import ApiToken

    rows = ApiToken.objects.order_by("name")
    if not rows:
        click.echo("No API tokens. Create one with `mcom api:token:create --name NAME`.")
    for t in rows:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        click.echo(f"{t.name}\t{t.prefix}…\t{'active' if t.is_active else 'revoked'}\tlast used: {used}")


@click.command("api:token:revoke")
@click.option("--name", required=True, help="The token's name")
@needs_django
def token_revoke(name: str) -> None:
    """Revoke a REST API token."""
    from mcom.commerce import tokens

    try:
        tokens.revoke_token(name=name)
    except tokens.TokenError as e:
        raise CommandError(str(e)) from None
    click.echo(f"Token '{name}' revoked.")


@click.command("indexer:reindex")
@needs_django
def reindex() -> None:
    """Rebuild the stock index (cataloginventory_stock_status) from the stock items."""
    from mcom.commerce import services

    rows = services.reindex_stock()
    click.echo(f"Stock index rebuilt ({rows} rows).")


COMMANDS = [sampledata_deploy, token_create, token_list, token_revoke, reindex]
