"""env.toml: one clear line naming the key for every bad value; overrides; secrets never shown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mcom import envconfig
from mcom.logconfig import RedactSecrets

from .conftest import run_mcom

SECRET = "s3cr3t-delivery-secret-0123456789abcdefXYZ"


def write_env(root: Path, text: str) -> Path:
    path = root / "etc" / "env.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> envconfig.EnvConfig:
    return envconfig.load(write_env(tmp_path, text), environ=environ or {})


BAD = [
    ('mode = "staging"\n', "mode", "unknown mode 'staging'"),
    ('colour = "blue"\n', "colour", "unknown key"),
    ('[service_bus]\nsecrett = "x"\n', "service_bus.secrett", "unknown key"),
    ('modules = "x"\n', "modules", "valid tuple"),
    ('modules = ["sales", "billing"]\n', "modules", "unknown module(s) billing"),
    ('[service_bus]\nsecure_endpoint = "maybe"\n', "service_bus.secure_endpoint", "valid boolean"),
    ('[service_bus]\nurl = "not a url"\n', "service_bus.url", "not an http(s) URL"),
    ('[service_bus]\nurl = "https://oms.example.com/"\n', "service_bus.url", "must contain the host region"),
    ('[service_bus]\nurl = "https://203.0.113.7/"\n', "service_bus.url", "carries no region"),
    ('[service_bus]\nread_timeout = -1\n', "service_bus.read_timeout", "greater than 0"),
    ('[db]\nurl = "mysql://u@h/db"\n', "db.url", "unsupported database URL scheme"),
    ('[service_bus]\napplication_id = "way-too-long-id"\n', "service_bus.application_id", "1-10 characters"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), BAD, ids=[b[1] + ":" + b[2][:12] for b in BAD])
def test_bad_value_is_one_line_naming_the_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(envconfig.ConfigError) as err:
        load_text(tmp_path, text)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"env.toml: {key}: "), msg
    assert fragment in msg


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(envconfig.ConfigError, match=r"^env.toml: not valid TOML"):
        load_text(tmp_path, "mode = developer\n")


@pytest.mark.parametrize(
    "url",
    ["https://api.eu.oms.example.com/", "https://us-east-1.bus.example.net", "http://127.0.0.1:8089",
     "http://localhost:8089/", "http://[::1]:8089/", "http://oms.test/", "http://sandbox.localhost:9000"],
)
def test_region_or_loopback_urls_accepted(tmp_path: Path, url: str) -> None:
    cfg = load_text(tmp_path, f'[service_bus]\nurl = "{url}"\n')
    assert cfg.service_bus.url.endswith("/")


def test_missing_key_needed_by_the_bus(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '[service_bus]\nurl = "https://api.eu.oms.example.com/"\n')
    with pytest.raises(envconfig.ConfigError, match=r"^env.toml: service_bus.oauth_server_url is missing"):
        cfg.require_service_bus()
    cfg = load_text(
        tmp_path,
        '[service_bus]\nurl = "https://api.eu.oms.example.com/"\noauth_server_url = "https://auth.eu.example.com/"\n'
        'oauth_client_id = "luma"\noauth_client_secret = "x"\n',
    )
    with pytest.raises(envconfig.ConfigError, match=r"service_bus.secret is missing"):
        cfg.require_service_bus()


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        'mode = "production"\n[service_bus]\nurl = "https://api.eu.oms.example.com/"\nsecure_endpoint = true\n',
        environ={
            "MCOM_MODE": "developer",
            "MCOM_MODULES": "sales, catalog",
            "MCOM_SERVICE_BUS__URL": "http://127.0.0.1:8089",
            "MCOM_SERVICE_BUS__SECURE_ENDPOINT": "false",
            "MCOM_SERVICE_BUS__LABELS": '{"team": "ops"}',
            "MCOM_ROOT": "/ignored",
        },
    )
    assert cfg.mode == "developer"
    assert cfg.modules == ("sales", "catalog")
    assert cfg.module_enabled("sales")
    assert not cfg.module_enabled("inventory")
    assert cfg.service_bus.url == "http://127.0.0.1:8089/"
    assert cfg.service_bus.secure_endpoint is False
    assert cfg.service_bus.labels == {"team": "ops"}


def test_bad_environment_override_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(envconfig.ConfigError, match=r"^env.toml: service_bus.secure_endpoint: "):
        load_text(tmp_path, "", environ={"MCOM_SERVICE_BUS__SECURE_ENDPOINT": "maybe"})


def test_short_secret_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mcom.config"):
        load_text(tmp_path, '[service_bus]\nsecret = "short-one"\n')
    assert "shorter than 32 characters" in caplog.text
    assert "short-one" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mcom.config"):
        load_text(tmp_path, f'[service_bus]\nsecret = "{SECRET}"\n')
    assert "shorter" not in caplog.text


def test_repr_hides_secrets(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path,
        f'[db]\nurl = "postgresql://mcom:dbpass-123@db.internal:5432/mcom"\n'
        f'[service_bus]\nsecret = "{SECRET}"\noauth_client_secret = "oauth-client-secret-value"\n',
    )
    for text in (repr(cfg), str(cfg), repr(cfg.service_bus), repr(cfg.db)):
        assert SECRET not in text
        assert "oauth-client-secret-value" not in text
        assert "dbpass-123" not in text
    assert "mcom:***@db.internal" in repr(cfg.db)
    assert set(cfg.secrets()) == {SECRET, "oauth-client-secret-value", "dbpass-123"}


def test_log_filter_redacts_secrets(env: Any) -> None:
    env(service_bus__secret=SECRET, service_bus__oauth_client_secret="oauth-client-secret-value")
    record = logging.LogRecord("mcom.test", logging.INFO, __file__, 1, "token %s and %s", (SECRET, "oauth-client-secret-value"), None)
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "token *** and ***"


# ------------------------------------------------------------------------------ through the CLI


CLI_BAD = [
    ("mode = [\n", "env.toml: not valid TOML"),
    ('mode = "staging"\n', "env.toml: mode: unknown mode 'staging'"),
    ('nonsense = 1\n', "env.toml: nonsense: unknown key"),
    ('modules = "x"\n', "env.toml: modules:"),
    ('[service_bus]\nsecure_endpoint = "maybe"\n', "env.toml: service_bus.secure_endpoint:"),
    ('[service_bus]\nurl = "https://oms.example.com"\n', "env.toml: service_bus.url:"),
]


@pytest.mark.parametrize(("text", "expected"), CLI_BAD, ids=[c[1][10:40] for c in CLI_BAD])
def test_cli_stops_with_one_line(tmp_root: Path, text: str, expected: str) -> None:
    secret = f'secret = "{SECRET}"\n' if "[service_bus]" in text else f'\n[service_bus]\nsecret = "{SECRET}"\n'
    write_env(tmp_root, text + secret)
    result = run_mcom(tmp_root, "deploy:mode:show")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: " + expected), lines[0]
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_django_secret_key_is_made_once_and_kept_apart_from_the_bus_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcom import instance

    monkeypatch.setenv("MCOM_ROOT", str(tmp_path))
    first = instance.django_secret_key()
    assert len(first) >= 50
    assert first == instance.django_secret_key()
    key_file = tmp_path / "var" / "django-secret-key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in key_file.parent.iterdir()] == ["django-secret-key"]
