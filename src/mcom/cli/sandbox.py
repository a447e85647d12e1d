"""``mcom oms:sandbox``: the local OMS + integration-bus simulator (no connector database needed).

The OAuth client secret it accepts comes from ``SANDBOX_CLIENT_SECRET`` or a file
(``--client-secret-file``), never from the command line (which every user can read in ``ps``).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mcom import instance

SECRET_ENV = "SANDBOX_CLIENT_SECRET"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


def client_secret_from(secret_file: Path | None) -> str:
    """The client secret: the first line of ``secret_file``, else ``$SANDBOX_CLIENT_SECRET``, else the default."""
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").splitlines()[0].strip() if secret_file.stat().st_size else ""
        except OSError as e:
            raise click.UsageError(f"cannot read --client-secret-file {secret_file}: {e.strerror}") from None
        if not secret:
            raise click.UsageError(f"--client-secret-file {secret_file} is empty")
        return secret
    return os.environ.get(SECRET_ENV, "").strip() or DEFAULT_CLIENT_SECRET


@click.command("oms:sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True, type=click.IntRange(1, 65535))
@click.option("--client-id", default="mcom", show_default=True, help="OAuth client id the sandbox accepts")
@click.option(
    "--client-secret-file", type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding the OAuth client secret it accepts (else ${SECRET_ENV}, else {DEFAULT_CLIENT_SECRET!r})",
)
@click.option("--no-auth", is_flag=True, help='Accept calls without a bearer token (for service_bus.auth = "none")')
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help="Sandbox SQLite file (default var/sandbox.sqlite3)")
@click.option("--token-ttl", default=3600, show_default=True, type=click.IntRange(1), help="Token lifetime in seconds")
def sandbox(host: str, port: int, client_id: str, client_secret_file: Path | None, no_auth: bool,
            db_path: Path | None, token_ttl: int) -> None:
    """Start the local OMS simulator (own SQLite database, web UI at /)."""
    from mcom.sandbox.server import run

    secret = client_secret_from(client_secret_file)
    path = db_path or instance.var_dir() / "sandbox.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    click.echo(f"Sandbox OMS on http://{host}:{port}/ (database {path}{', no bearer token required' if no_auth else ''})")
    run(host=host, port=port, db_path=str(path), client_id=client_id, client_secret=secret, token_ttl=token_ttl,
        require_token=not no_auth)


COMMANDS = [sandbox]
