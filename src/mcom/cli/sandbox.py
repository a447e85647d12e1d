"""``mcom oms:sandbox``: the local OMS + integration-bus simulator (no connector database needed)."""

from __future__ import annotations

from pathlib import Path

import click

from mcom import instance


@click.command("oms:sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=click.IntRange(1, 65535))
@click.option("--client-id", default="mcom", show_default=True, help="OAuth client id the sandbox accepts")
@click.option("--client-secret", default="sandbox-client-secret", show_default=True, help="OAuth client secret it accepts")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help="Sandbox SQLite file (default var/sandbox.sqlite3)")
@click.option("--token-ttl", default=3600, show_default=True, type=click.IntRange(1), help="Token lifetime in seconds")
def sandbox(host: str, port: int, client_id: str, client_secret: str, db_path: Path | None, token_ttl: int) -> None:
    """Start the local OMS simulator (own SQLite database, web UI at /)."""
    from mcom.sandbox.server import run

    path = db_path or instance.var_dir() / "sandbox.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    click.echo(f"Sandbox OMS on http://{host}:{port}/ (database {path})")
    run(host=host, port=port, db_path=str(path), client_id=client_id, client_secret=client_secret, token_ttl=token_ttl)


COMMANDS = [sandbox]
