"""Instance commands: setup:install, setup:upgrade, deploy:mode:*, config:*, admin:user:create."""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

import click

from mcom import envconfig, instance
from mcom.cli.base import CommandError, needs_django, setup_django


def _migrate() -> int:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    call_command("migrate", interactive=False, verbosity=0)
    return len(plan)


# Admin passwords are checked even when settings declare no validators (the admin is internet-facing).
ADMIN_PASSWORD_VALIDATORS: list[dict[str, Any]] = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


def _create_admin(username: str, password: str, email: str, *, read_only: bool = False) -> bool:
    """Create (or update the password of) a staff user; returns True when created."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import get_password_validators, validate_password
    from django.core.exceptions import ValidationError

    if not username.strip():
        raise CommandError("--admin-user must not be empty")
    try:
        validate_password(password, password_validators=get_password_validators(ADMIN_PASSWORD_VALIDATORS))
    except ValidationError as e:
        raise CommandError(f"admin password: {' '.join(e.messages)}") from None
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    user.email = email or user.email
    user.is_staff = True
    user.is_superuser = not read_only
    user.set_password(password)
    user.save()
    if read_only:
        from mcom.adminui.permissions import make_read_only

        make_read_only(user)
    return created


@click.command("setup:install")
@click.option("--db-url", help="Database URL: sqlite:///var/mcom.sqlite3 (default) or postgresql://user@host:5432/name")
@click.option("--base-url", help="Store base URL (web/base_url), e.g. http://127.0.0.1:8000")
@click.option("--admin-user", help="Admin user name")
@click.option("--admin-password", help="Admin password")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--mode", type=click.Choice(["developer", "production"]), help="Application mode")
@click.option("--modules", help="Comma-separated modules to enable (default: all)")
@click.option("--service-bus-url", help="OMS API URL (must contain the host region)")
@click.option("--oauth-server-url", help="OAuth server URL")
@click.option("--oauth-client-id", help="OAuth client id")
@click.option("--oauth-client-secret", help="OAuth client secret")
@click.option("--application-id", help="Integration id on the bus (default mdc)")
@click.option("--application-base-url", help="URL the OMS delivers to (default: the store base URL)")
@click.option("--secret", help="HMAC secret for deliveries (default: a random 48-character secret)")
@click.option("--secure-endpoint/--no-secure-endpoint", default=None, help="Reject unsigned deliveries (default yes)")
@click.option("--no-interaction", "-n", is_flag=True, help="Do not ask; take defaults for everything not given")
def setup_install(no_interaction: bool, **opts: Any) -> None:
    """Write etc/env.toml, create the schema, a default store and an admin user."""
    instance.ensure_dirs()
    try:
        raw = envconfig.read_raw()
    except envconfig.ConfigError:
        raw = {}

    def ask(key: str, prompt: str, default: str, hide: bool = False) -> str:
        val = opts.get(key)
        if val is not None:
            return str(val)
        if no_interaction:
            return default
        return str(click.prompt(prompt, default=default or None, hide_input=hide, show_default=not hide))

    db_url = ask("db_url", "Database URL", raw.get("db", {}).get("url", "sqlite:///var/mcom.sqlite3"))
    base_url = ask("base_url", "Store base URL", "http://127.0.0.1:8000")
    sb_old: dict[str, Any] = dict(raw.get("service_bus", {}))
    sb: dict[str, Any] = {
        "url": ask("service_bus_url", "OMS API URL", sb_old.get("url", "")),
        "oauth_server_url": ask("oauth_server_url", "OAuth server URL", sb_old.get("oauth_server_url", "")),
        "oauth_client_id": ask("oauth_client_id", "OAuth client id", sb_old.get("oauth_client_id", "")),
        "oauth_client_secret": ask(
            "oauth_client_secret", "OAuth client secret", sb_old.get("oauth_client_secret", ""), hide=True
        ),
        "application_id": opts.get("application_id") or sb_old.get("application_id", "mdc"),
        "application_base_url": opts.get("application_base_url") or sb_old.get("application_base_url", ""),
        "secret": opts.get("secret") or sb_old.get("secret") or pysecrets.token_urlsafe(36),
    }
    if opts.get("secure_endpoint") is not None:
        sb["secure_endpoint"] = opts["secure_endpoint"]
    elif "secure_endpoint" in sb_old:
        sb["secure_endpoint"] = sb_old["secure_endpoint"]
    if sb_old.get("labels"):
        sb["labels"] = sb_old["labels"]
    data: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("db", "service_bus")}
    data["mode"] = opts.get("mode") or raw.get("mode", "developer")
    if opts.get("modules"):
        data["modules"] = [m.strip() for m in opts["modules"].split(",") if m.strip()]
    data["db"] = {"url": db_url}
    data["service_bus"] = sb
    try:
        envconfig.write(data)
    except envconfig.ConfigError as e:
        raise CommandError(str(e)) from None
    click.echo(f"Wrote {instance.env_file()}")

    setup_django()
    applied = _migrate()
    click.echo(f"Schema ready ({applied} migrations applied).")

    from mcom.commerce import config as store_config
    from mcom.commerce.models import Store

    try:
        store_config.set_value("web/base_url", base_url)
    except store_config.ConfigPathError as e:
        raise CommandError(str(e)) from None
    store, created = Store.objects.get_or_create(code="default", defaults={"name": "Default Store View", "base_url": base_url})
    if created:
        click.echo("Created store 'default'.")

    user = ask("admin_user", "Admin user", "admin")
    password = opts.get("admin_password")
    if password is None:
        if no_interaction:
            password = pysecrets.token_urlsafe(12)
            click.echo(f"Admin password (generated, shown once): {password}")
        else:
            password = click.prompt("Admin password", hide_input=True, confirmation_prompt=True)
    created_user = _create_admin(user, str(password), opts.get("admin_email") or "")
    click.echo(f"Admin user '{user}' {'created' if created_user else 'updated'}.")
    click.echo("Installation complete. Next: `mcom setup:upgrade` to register with the OMS, then `mcom serve`.")


@click.command("setup:upgrade")
@click.option("--skip-register", is_flag=True, help="Only migrate; do not re-register with the OMS")
@needs_django
def setup_upgrade(skip_register: bool) -> None:
    """Apply schema migrations, then re-register with the OMS (a failure to reach it only warns)."""
    applied = _migrate()
    click.echo(f"Schema up to date ({applied} migrations applied).")
    if skip_register:
        return
    from mcom.service_bus import registration

    try:
        reg = registration.register(source="setup:upgrade")
    except registration.RegistrationError as e:
        click.echo(f"Warning: registration with the OMS failed: {e}", err=True)
        click.echo("Run `mcom oms:service-bus:register` once the OMS is reachable.", err=True)
        return
    click.echo(f"Registered '{reg.application_id}' at {reg.url} ({len(reg.topics)} topics).")


@click.command("deploy:mode:show")
def mode_show() -> None:
    """Show the application mode (developer or production)."""
    setup_django()
    click.echo(f"Current application mode: {envconfig.current().mode}")


@click.command("deploy:mode:set")
@click.argument("mode", type=click.Choice(["developer", "production"]))
def mode_set(mode: str) -> None:
    """Set the application mode (stored in env.toml)."""
    raw = envconfig.read_raw()
    raw["mode"] = mode
    try:
        envconfig.write(raw)
    except envconfig.ConfigError as e:
        raise CommandError(str(e)) from None
    click.echo(f"Enabled {mode} mode.")


@click.command("config:set")
@click.argument("path")
@click.argument("value")
@click.option("--scope", default="default", show_default=True, help="default or store")
@click.option("--scope-code", default="", help="Store code when --scope store")
@needs_django
def config_set(path: str, value: str, scope: str, scope_code: str) -> None:
    """Set an admin configuration value, e.g. `config:set mcom/general/sales_channel_id luma`."""
    from mcom.commerce import config as store_config

    try:
        parsed = store_config.set_value(path, value, scope=scope, scope_code=scope_code)
    except store_config.ConfigPathError as e:
        raise CommandError(str(e)) from None
    where = f"store {scope_code}" if scope == "store" else "default scope"
    click.echo(f"{path} = {store_config.format_value(parsed)} ({where})")


@click.command("config:show")
@click.argument("path", required=False)
@needs_django
def config_show(path: str | None) -> None:
    """Show admin configuration values (all paths, or one)."""
    from mcom.commerce import config as store_config

    try:
        rows = store_config.show(path)
    except store_config.ConfigPathError as e:
        raise CommandError(str(e)) from None
    for p, scope, code, value in rows:
        where = "default" if scope == "default" else f"store:{code}"
        click.echo(f"{p} [{where}] = {store_config.format_value(value)}")


@click.command("admin:user:create")
@click.option("--admin-user", required=True, help="User name")
@click.option("--admin-password", required=True, help="Password")
@click.option("--admin-email", default="", help="E-mail")
@click.option("--read-only", is_flag=True, help="Staff who can see the MCOM section but not act")
@needs_django
def admin_user_create(admin_user: str, admin_password: str, admin_email: str, read_only: bool) -> None:
    """Create an admin user (or reset its password); --read-only: may view the MCOM section, not act."""
    created = _create_admin(admin_user, admin_password, admin_email, read_only=read_only)
    role = " — read-only: may view the MCOM section but not act in it" if read_only else ""
    click.echo(f"Admin user '{admin_user}' {'created' if created else 'updated'}{role}.")


COMMANDS = [setup_install, setup_upgrade, mode_show, mode_set, config_set, config_show, admin_user_create]
