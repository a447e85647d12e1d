"""Instance commands: setup:install / setup:upgrade on SQLite and PostgreSQL, config:*, deploy:mode:*."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mcom import envconfig
from mcom.cli.main import main

from .conftest import ADMIN_PASSWORD, run_mcom

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _ok(result: Any) -> str:
    assert result.returncode == 0, f"stdout={result.stdout}\nstderr={result.stderr}"
    return str(result.stdout)


def _install_and_check(root: Path, *db_args: str) -> None:
    out = _ok(run_mcom(root, "setup:install", "-n", "--admin-password", ADMIN_PASSWORD,
                       "--base-url", "http://127.0.0.1:8000", *db_args))
    assert "Schema ready" in out
    assert "Admin user 'admin' created" in out
    assert ADMIN_PASSWORD not in out
    env = tomllib.loads((root / "etc" / "env.toml").read_text())
    assert env["mode"] == "developer"
    assert len(env["service_bus"]["secret"]) >= 32  # generated
    assert (root / "etc" / "env.toml").stat().st_mode & 0o077 == 0

    out = _ok(run_mcom(root, "setup:upgrade", "--skip-register"))
    assert "Schema up to date (0 migrations applied)" in out

    out = _ok(run_mcom(root, "config:show", "web/base_url"))
    assert out.strip() == "web/base_url [default] = http://127.0.0.1:8000"
    out = _ok(run_mcom(root, "sampledata:deploy", "--products", "60", "--orders", "5"))
    assert "products: 60 created" in out
    assert "Orders: 5 placed" in out
    # a second install keeps the secret and updates the admin
    secret = env["service_bus"]["secret"]
    out = _ok(run_mcom(root, "setup:install", "-n", "--admin-password", ADMIN_PASSWORD, *db_args))
    assert "Admin user 'admin' updated" in out
    assert tomllib.loads((root / "etc" / "env.toml").read_text())["service_bus"]["secret"] == secret


def test_install_and_upgrade_sqlite(tmp_root: Path) -> None:
    _install_and_check(tmp_root)
    assert (tmp_root / "var" / "mcom.sqlite3").exists()
    assert (tmp_root / "var" / "log").is_dir()


@pytest.fixture
def fresh_pg_db() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = f"mcom_ftest_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable: {e}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_install_and_upgrade_postgresql(tmp_root: Path, fresh_pg_db: str) -> None:
    _install_and_check(tmp_root, "--db-url", fresh_pg_db)
    assert not (tmp_root / "var" / "mcom.sqlite3").exists()


def test_install_rejects_bad_options(tmp_root: Path) -> None:
    result = run_mcom(tmp_root, "setup:install", "-n", "--admin-password", ADMIN_PASSWORD,
                      "--service-bus-url", "https://oms.example.com/")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: env.toml: service_bus.url:")
    result = run_mcom(tmp_root, "setup:install", "-n", "--admin-password", "short")
    assert result.returncode != 0
    assert result.stderr.strip().startswith("Error: admin password: This password is too short.")


# ------------------------------------------------------------------------------ in-process CLI


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_config_set_show_with_store_scope(cli: CliRunner, db: None) -> None:
    from mcom.commerce import config
    from mcom.commerce.models import Store

    Store.objects.get_or_create(code="default", defaults={"name": "Default"})
    Store.objects.create(code="eu_de", name="Germany")
    r = cli.invoke(main, ["config:set", "mcom/general/sales_channel_id", "luma"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["config:set", "mcom/general/sales_channel_id", "luma-de", "--scope", "store",
                          "--scope-code", "eu_de"])
    assert r.exit_code == 0
    assert "(store eu_de)" in r.output
    assert config.get("mcom/general/sales_channel_id", "eu_de") == "luma-de"
    assert config.get("mcom/general/sales_channel_id", "default") == "luma"  # store → default
    assert config.get("mcom/general/sales_channel_id") == "luma"
    r = cli.invoke(main, ["config:show", "mcom/general/sales_channel_id"])
    assert r.output.splitlines() == [
        "mcom/general/sales_channel_id [default] = luma",
        "mcom/general/sales_channel_id [store:eu_de] = luma-de",
    ]
    r = cli.invoke(main, ["config:set", "mcom/transport/process_order_synchronously", "yes"])
    assert r.exit_code == 0
    assert config.get("mcom/transport/process_order_synchronously") is True
    r = cli.invoke(main, ["config:show"])
    assert "mcom/message_log/prune_days [default] = 30" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mcom/nope", "1"], "unknown configuration path 'mcom/nope'"),
        (["mcom/transport/process_order_synchronously", "maybe"], "expected yes or no"),
        (["mcom/message_log/prune_days", "ten"], "expected a whole number"),
        (["mcom/message_log/prune_days", "0"], "must be at least 1"),
        (["web/base_url", "ftp://x"], "not an http(s) URL"),
        (["mcom/orders/export_statuses", "pending,shipped"], "unknown order status shipped"),
        (["mcom/general/sales_channel_id", "x", "--scope", "store", "--scope-code", "nowhere"], "unknown store"),
        (["mcom/general/sales_channel_id", "x", "--scope", "store"], "--scope store needs --scope-code"),
        (["mcom/general/sales_channel_id", "x", "--scope", "website"], "unknown scope"),
        (["mcom/message_log/prune_days", "5", "--scope", "store", "--scope-code", "default"], "default scope"),
    ],
)
def test_config_set_rejects_invalid_values(cli: CliRunner, db: None, args: list[str], message: str) -> None:
    from mcom.commerce.models import ConfigValue, Store

    Store.objects.get_or_create(code="default", defaults={"name": "Default"})
    r = cli.invoke(main, ["config:set", *args])
    assert r.exit_code == 1
    assert message in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not ConfigValue.objects.filter(path=args[0]).exists()


def test_config_show_unknown_path(cli: CliRunner, db: None) -> None:
    r = cli.invoke(main, ["config:show", "nope/x"])
    assert r.exit_code == 1
    assert "unknown configuration path" in r.output


def test_deploy_mode_set_and_show(cli: CliRunner, tmp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCOM_ROOT", str(tmp_root))
    envconfig.reload()
    try:
        r = cli.invoke(main, ["deploy:mode:show"])
        assert r.output.strip() == "Current application mode: developer"
        r = cli.invoke(main, ["deploy:mode:set", "production"])
        assert r.exit_code == 0
        assert "Enabled production mode." in r.output
        assert tomllib.loads((tmp_root / "etc" / "env.toml").read_text())["mode"] == "production"
        r = cli.invoke(main, ["deploy:mode:show"])
        assert r.output.strip() == "Current application mode: production"
        r = cli.invoke(main, ["deploy:mode:set", "staging"])
        assert r.exit_code == 2
        assert "staging" in r.output
        cli.invoke(main, ["deploy:mode:set", "developer"])
        assert envconfig.current().mode == "developer"
    finally:
        monkeypatch.undo()
        envconfig.reload()
