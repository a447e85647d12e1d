"""``etc/env.toml``: the instance configuration (the seed's ``app/etc/env.php``).

One typed accessor, :func:`current`, returns the validated :class:`EnvConfig`. Every key can be
overridden by an environment variable ``MCOM_<SECTION>__<KEY>`` (``MCOM_SERVICE_BUS__URL``,
``MCOM_DB__URL``, ``MCOM_MODE``, ``MCOM_MODULES=sales,catalog``). Validation failures raise
:class:`ConfigError` whose message is one line naming the key; secrets are never part of it.

The service-bus URL must carry the host region (seed: "The service bus URL must contain the
host region"). Rule: one DNS label of the host is a region code such as ``eu``, ``us``,
``us-east-1``, ``eu-west-2`` or ``apac`` (see :data:`REGION_LABEL`). Loopback and development
hosts (``localhost``, ``127.0.0.0/8``, ``::1``, ``*.localhost``, ``*.test``, ``*.local``) are exempt,
so the sandbox OMS works without one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from mcom import instance

log = logging.getLogger("mcom.config")

MODULES: tuple[str, ...] = ("sales", "catalog", "inventory", "postsales")
Mode = Literal["developer", "production"]
BusAuth = Literal["oauth2", "none"]

REGION_LABEL = re.compile(
    r"^(?:us|eu|uk|ca|sa|br|mx|ap|apac|emea|amer|au|jp|in|kr|sg|cn|me|af|de|fr|nl|"
    r"(?:us|eu|ap|ca|sa|me|af)-[a-z]+-\d+)$"
)
EXEMPT_SUFFIXES = (".localhost", ".test", ".local", ".internal")
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """A bad or missing configuration value. ``str()`` is one line naming the key."""


def _is_loopback_or_dev(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(EXEMPT_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_has_region(url: str) -> bool:
    """True when the URL's host carries a region label or is a loopback/development host."""
    host = (urlsplit(url).hostname or "").lower()
    if _is_loopback_or_dev(host):
        return True
    try:
        ipaddress.ip_address(host)
        return False  # a bare public IP address carries no region
    except ValueError:
        pass
    return any(REGION_LABEL.match(label) for label in host.split("."))


def _check_http_url(value: str, *, allow_empty: bool = False) -> str:
    value = value.strip()
    if not value and allow_empty:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def redact_url(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db`` (for repr, logs and errors)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class DbConfig(_Section):
    url: str = "sqlite:///var/mcom.sqlite3"

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield (key, redact_url(value)) if key == "url" and isinstance(value, str) else (key, value)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        scheme = urlsplit(v).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)")
        return v


class ServiceBusConfig(_Section):
    """The seed's ``serviceBus`` array, same key names (+ protocol switches, all optional)."""

    url: str = ""
    oauth_server_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: SecretStr = SecretStr("")
    application_id: str = "mdc"
    application_base_url: str = ""
    secret: SecretStr = SecretStr("")
    secure_endpoint: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    # Protocol defaults of oms-protocol.md §12 (all overridable).
    register_path: str = ""
    remote_path: str = "remote/oms"
    delegate_path: str = "delegate/oms"
    events_path: str = "events"
    topics_key: str = "subscribes"
    sign_requests: bool = True
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    token_ttl: int = Field(default=3600, gt=0)
    # ``none``: a development bus without OAuth (no token endpoint, no bearer token); refused in production.
    auth: BusAuth = "oauth2"
    # Inbound endpoint limits: a bigger body answers 413; a body not received within
    # body_timeout_seconds is dropped (408); at most max_inflight_bodies bodies / max_inflight_bytes
    # bytes are read at once (else 503, the bus retries). Unsigned requests to a secure endpoint are
    # refused before their body is read.
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_inflight_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    max_inflight_bodies: int = Field(default=64, ge=1)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Replay protection: a delivery whose payload date is older than this many days is refused, and
    # the compact record of pruned messages is kept this long (0 = no date window; records kept 365 days).
    replay_window_days: int = Field(default=0, ge=0)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = _check_http_url(v, allow_empty=True)
        if v and not host_has_region(v):
            raise ValueError(
                f"host {urlsplit(v).hostname!r} carries no region; the service bus URL must contain "
                "the host region (e.g. https://api.eu.oms.example.com/)"
            )
        if v and not v.endswith("/"):
            v += "/"
        return v

    @field_validator("oauth_server_url")
    @classmethod
    def _oauth_url(cls, v: str) -> str:
        v = _check_http_url(v, allow_empty=True)
        if v and not v.endswith("/"):
            v += "/"
        return v

    @field_validator("application_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return _check_http_url(v, allow_empty=True).rstrip("/")

    @field_validator("application_id")
    @classmethod
    def _app_id(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,10}", v):
            raise ValueError("must be 1-10 characters of letters, digits, '_', '.', '-'")
        return v


class QueueConfig(_Section):
    """Retry policy of the message log (inbound and outbound)."""

    max_attempts: int = Field(default=10, ge=1)
    backoff_base_seconds: float = Field(default=10.0, ge=0)
    backoff_max_seconds: float = Field(default=3600.0, ge=0)
    batch_size: int = Field(default=200, ge=1)
    message_time_limit: float = Field(default=60.0, gt=0)
    # A claimed message not finished within this time is taken over by another worker (a worker
    # that was killed). The worker renews it during a batch, so it only has to exceed message_time_limit.
    lease_seconds: float = Field(default=300.0, gt=0)
    # A message parked on a transient cause (retries ran out while the OMS was down, entity not
    # known yet) is re-queued by the cron job service_bus.requeue_parked at most this many times.
    requeue_max: int = Field(default=3, ge=0)
    # inbound transient parks are re-queued once they have been parked this long
    requeue_inbound_after_seconds: float = Field(default=900.0, ge=0)
    # at most this many parked messages are re-queued per pass (per direction)
    requeue_per_pass: int = Field(default=2000, ge=1)
    # OMS requests a worker keeps in flight at once, across different entities (one entity's
    # messages are always sent one after another). 1 = strictly sequential.
    send_concurrency: int = Field(default=8, ge=1, le=256)


class CronConfig(_Section):
    interval_seconds: float = Field(default=2.0, gt=0)


class WorkerConfig(_Section):
    """``mcom worker`` (its inbound, outbound and cron lanes; docs/deployment.md)."""

    #: a lane with nothing to do looks again after this long even without a wake-up (the safety net:
    #: new work wakes it at once through NOTIFY / a datagram; a retry's backoff ends on the poll)
    poll_seconds: float = Field(default=5.0, gt=0)
    #: inbound: the claimed batch commits after this many messages …
    commit_every: int = Field(default=50, ge=1)
    #: … or after this long, whichever comes first (latency of an applied message stays low)
    commit_seconds: float = Field(default=0.05, gt=0)


class ObservabilityConfig(_Section):
    """Operator endpoints and log format (``/metrics``, ``/readyz``, ``var/log``; docs/deployment.md)."""

    #: a bearer token for ``/metrics``; empty = no token (then only loopback clients, see below)
    metrics_token: SecretStr = SecretStr("")
    #: serve ``/metrics`` to loopback clients only (a valid token is accepted from anywhere)
    metrics_localhost_only: bool = True
    #: readiness fails when no cron/worker pass finished for this long
    heartbeat_max_age_seconds: float = Field(default=120.0, gt=0)
    #: ``line`` (human) or ``json`` (one JSON object per line, for log shippers)
    log_format: Literal["line", "json"] = "line"
class SecurityConfig(_Section):
    """Brute-force limits of the admin login and REST Basic auth (django-axes)."""

    login_failure_limit: int = Field(default=5, ge=1)
    login_cooloff_seconds: float = Field(default=900.0, gt=0)


class EnvConfig(_Section):
    mode: Mode = "developer"
    modules: tuple[str, ...] = MODULES
    plugins: tuple[str, ...] = ()
    db: DbConfig = Field(default_factory=DbConfig)
    service_bus: ServiceBusConfig = Field(default_factory=ServiceBusConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    cron: CronConfig = Field(default_factory=CronConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)

    @model_validator(mode="after")
    def _auth_none_only_for_development(self) -> EnvConfig:
        if self.mode == "production" and self.service_bus.auth == "none":
            raise ValueError(
                'service_bus.auth = "none" is for development buses only; use "oauth2" in production mode'
            )
        return self

    @field_validator("modules")
    @classmethod
    def _modules(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in v if m not in MODULES]
        if unknown:
            raise ValueError(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
        return tuple(dict.fromkeys(v))

    def module_enabled(self, name: str) -> bool:
        return name in self.modules

    def require_service_bus(self) -> ServiceBusConfig:
        """The service-bus section, checked complete; raises :class:`ConfigError` naming the key."""
        sb = self.service_bus
        if sb.auth == "none":
            if not sb.url:
                raise ConfigError("env.toml: service_bus.url is missing (required to reach the OMS)")
            if not sb.secret.get_secret_value():
                raise ConfigError("env.toml: service_bus.secret is missing (required to sign deliveries)")
            return sb
        for key in ("url", "oauth_server_url", "oauth_client_id"):
            if not getattr(sb, key):
                raise ConfigError(f"env.toml: service_bus.{key} is missing (required to reach the OMS)")
        if not sb.oauth_client_secret.get_secret_value():
            raise ConfigError("env.toml: service_bus.oauth_client_secret is missing (required to reach the OMS)")
        if not sb.secret.get_secret_value():
            raise ConfigError("env.toml: service_bus.secret is missing (required to sign deliveries)")
        return sb

    def secrets(self) -> list[str]:
        """Every secret value, for log redaction."""
        vals = [self.service_bus.oauth_client_secret.get_secret_value(), self.service_bus.secret.get_secret_value(),
                self.observability.metrics_token.get_secret_value()]
        pw = urlsplit(self.db.url).password
        if pw:
            vals.append(pw)
        return [v for v in vals if v]


# ---------------------------------------------------------------------------------------- loading


def _env_overrides(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("MCOM_") or name in ("MCOM_ROOT",) or name.startswith("MCOM_TEST"):
            continue
        path = name[5:].lower().split("__")
        value: Any = raw
        if path == ["modules"] or path == ["plugins"]:
            value = [p.strip() for p in raw.split(",") if p.strip()]
        elif raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(root)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "literal_error" and key == "mode":
        msg = f"unknown mode {first.get('input')!r} (use developer or production)"
    if not first["loc"]:  # a rule across keys: the message names them
        return f"env.toml: {msg}"
    return f"env.toml: {key}: {msg}"


def parse(data: dict[str, Any]) -> EnvConfig:
    """Validate a raw mapping (from TOML + overrides) into an :class:`EnvConfig`."""
    try:
        cfg = EnvConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None
    return cfg


def read_raw(path: Path | None = None) -> dict[str, Any]:
    path = path or instance.env_file()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"env.toml: not valid TOML: {e}") from None


def load(path: Path | None = None, environ: dict[str, str] | None = None) -> EnvConfig:
    """Read ``etc/env.toml`` (absent → defaults), apply ``MCOM_*`` overrides, validate."""
    raw = _merge(read_raw(path), _env_overrides(os.environ if environ is None else environ))
    cfg = parse(raw)
    warn_short_secret(cfg.service_bus.secret.get_secret_value())
    return cfg


def warn_short_secret(secret: str) -> bool:
    """Log a warning (never the value) when the bus secret is set but short; True when it is."""
    if secret and len(secret) < MIN_SECRET_LENGTH:
        log.warning("service_bus.secret is shorter than %d characters; use a longer secret", MIN_SECRET_LENGTH)
        return True
    return False


@dataclass
class _Cache:
    cfg: EnvConfig | None = None


_cache = _Cache()


def current() -> EnvConfig:
    """The instance configuration, loaded once per process (see :func:`reload`)."""
    if _cache.cfg is None:
        _cache.cfg = load()
    return _cache.cfg


def cached() -> EnvConfig | None:
    """The configuration if already loaded, without loading it (safe inside logging filters)."""
    return _cache.cfg


def reload() -> EnvConfig:
    _cache.cfg = None
    return current()


def write(data: dict[str, Any], path: Path | None = None) -> None:
    """Validate and write ``env.toml`` (used by setup:install and deploy:mode:set)."""
    import tomli_w

    parse(data)
    path = path or instance.env_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with contextlib.suppress(OSError):  # non-POSIX filesystems
        path.chmod(0o600)
    _cache.cfg = None


def is_developer_mode() -> bool:
    return current().mode == "developer"
