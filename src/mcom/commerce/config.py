"""Scoped admin configuration (``Stores > Configuration > MCOM Connector``).

Values live in ``core_config_data`` with a scope (``default`` or ``store`` + store code). Every
known path is declared in :data:`PATHS` with its type, default, group and label; reading a value
resolves store → default → declared default. Values are stored as text and parsed by type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from mcom.commerce.models import ConfigValue, Store

Kind = Literal["str", "bool", "int", "list", "url"]


class ConfigPathError(ValueError):
    """An unknown path, scope or an invalid value; the message is one line."""


@dataclass(frozen=True)
class ConfigPath:
    path: str
    kind: Kind
    default: Any
    group: str
    label: str
    help: str = ""
    store_scoped: bool = True
    choices: Callable[[], list[str]] | None = field(default=None, compare=False)


def _order_statuses() -> list[str]:
    return ["pending", "processing", "holded", "payment_review", "fraud", "complete", "closed", "canceled"]


def _product_attributes() -> list[str]:
    from mcom.commerce.models import Product

    codes: set[str] = set()
    for attrs in Product.objects.exclude(custom_attributes={}).values_list("custom_attributes", flat=True)[:500]:
        codes.update(attrs)
    return sorted(codes | {"color", "size", "material", "brand", "ean", "weight", "price", "url_key"})


PATHS: dict[str, ConfigPath] = {
    p.path: p
    for p in [
        ConfigPath(
            "mcom/general/sales_channel_id", "str", "", "General", "Sales Channel ID",
            "External id of the sales channel defined in the OMS. Orders of a store without it are not exported.",
        ),
        ConfigPath(
            "mcom/transport/process_order_synchronously", "bool", False, "Transport", "Process order synchronously",
            "Yes: send the order while it is placed. No (recommended): cron sends it.",
        ),
        ConfigPath(
            "mcom/orders/export_statuses", "list", ["pending"], "Orders", "Order statuses to export",
            "Only payment-authorized orders in one of these statuses are exported.", choices=_order_statuses,
        ),
        ConfigPath(
            "mcom/catalog/custom_attributes", "list", [], "Catalog", "Product custom attributes",
            "Product attribute codes exported with catalog synchronisation.", choices=_product_attributes,
        ),
        ConfigPath(
            "mcom/message_log/prune_enabled", "bool", True, "Message Log", "Prune old messages",
            "Delete finished messages of mcom_logged_messages_queue automatically.", store_scoped=False,
        ),
        ConfigPath(
            "mcom/message_log/prune_days", "int", 30, "Message Log", "Keep messages for (days)",
            store_scoped=False,
        ),
        ConfigPath("web/base_url", "url", "", "Web", "Base URL", "Store base URL (inbound URL when application_base_url is empty)."),
    ]
}

GROUPS: tuple[str, ...] = ("General", "Transport", "Orders", "Catalog", "Message Log", "Web")


def declared(path: str) -> ConfigPath:
    try:
        return PATHS[path]
    except KeyError:
        raise ConfigPathError(f"unknown configuration path {path!r}") from None


def parse_value(spec: ConfigPath, raw: str) -> Any:
    """Parse user input (CLI/admin) or stored text into the path's type; raise ConfigPathError."""
    raw = raw.strip()
    if spec.kind == "bool":
        low = raw.lower()
        if low in ("1", "yes", "true", "on", "y"):
            return True
        if low in ("0", "no", "false", "off", "n", ""):
            return False
        raise ConfigPathError(f"{spec.path}: expected yes or no, got {raw!r}")
    if spec.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise ConfigPathError(f"{spec.path}: expected a whole number, got {raw!r}") from None
        if value < 1:
            raise ConfigPathError(f"{spec.path}: must be at least 1")
        return value
    if spec.kind == "list":
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigPathError(f"{spec.path}: not a valid list {raw!r}") from None
        else:
            items = raw.split(",")
        return [str(i).strip() for i in items if str(i).strip()]
    if spec.kind == "url":
        if raw:
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigPathError(f"{spec.path}: not an http(s) URL: {raw!r}")
        return raw.rstrip("/")
    return raw


def _serialize(spec: ConfigPath, value: Any) -> str:
    if spec.kind == "bool":
        return "1" if value else "0"
    if spec.kind == "list":
        return ",".join(value)
    return str(value)


def _store_code(store: Store | str | None) -> str:
    if store is None:
        return ""
    return store.code if isinstance(store, Store) else store


def get(path: str, store: Store | str | None = None) -> Any:
    """The value of ``path`` for ``store``: store scope, else default scope, else declared default."""
    spec = declared(path)
    code = _store_code(store)
    rows = {
        (r.scope, r.scope_code): r.value
        for r in ConfigValue.objects.filter(path=path).filter(
            scope__in=[ConfigValue.SCOPE_DEFAULT, ConfigValue.SCOPE_STORE]
        )
    }
    if code and (ConfigValue.SCOPE_STORE, code) in rows:
        return parse_value(spec, rows[(ConfigValue.SCOPE_STORE, code)])
    if (ConfigValue.SCOPE_DEFAULT, "") in rows:
        return parse_value(spec, rows[(ConfigValue.SCOPE_DEFAULT, "")])
    return spec.default


def set_value(path: str, raw: str | Any, *, scope: str = "default", scope_code: str = "") -> Any:
    """Validate and store a value; returns the parsed value. Raises :class:`ConfigPathError`."""
    spec = declared(path)
    if scope not in (ConfigValue.SCOPE_DEFAULT, ConfigValue.SCOPE_STORE):
        raise ConfigPathError(f"unknown scope {scope!r} (use default or store)")
    if scope == ConfigValue.SCOPE_STORE:
        if not spec.store_scoped:
            raise ConfigPathError(f"{path} can only be set in the default scope")
        if not scope_code:
            raise ConfigPathError("--scope store needs --scope-code CODE")
        if not Store.objects.filter(code=scope_code).exists():
            raise ConfigPathError(f"unknown store {scope_code!r}")
    else:
        scope_code = ""
    value = parse_value(spec, raw) if isinstance(raw, str) else raw
    if spec.kind == "list" and spec.choices and spec.path == "mcom/orders/export_statuses":
        unknown = [v for v in value if v not in spec.choices()]
        if unknown:
            raise ConfigPathError(f"{path}: unknown order status {', '.join(unknown)}")
    ConfigValue.objects.update_or_create(
        scope=scope, scope_code=scope_code, path=path, defaults={"value": _serialize(spec, value)}
    )
    return value


def unset(path: str, *, scope: str = "default", scope_code: str = "") -> None:
    declared(path)
    ConfigValue.objects.filter(path=path, scope=scope, scope_code=scope_code if scope == "store" else "").delete()


def show(path: str | None = None) -> list[tuple[str, str, str, Any]]:
    """Rows ``(path, scope, scope_code, value)``: every declared default plus every stored override."""
    if path is not None:
        declared(path)
    rows: list[tuple[str, str, str, Any]] = []
    for spec in PATHS.values():
        if path is not None and spec.path != path:
            continue
        stored = ConfigValue.objects.filter(path=spec.path).order_by("scope", "scope_code")
        default_row = next((r for r in stored if r.scope == ConfigValue.SCOPE_DEFAULT), None)
        rows.append((spec.path, "default", "", parse_value(spec, default_row.value) if default_row else spec.default))
        for r in stored:
            if r.scope == ConfigValue.SCOPE_STORE:
                rows.append((spec.path, r.scope, r.scope_code, parse_value(spec, r.value)))
    return rows


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(value) if value else "(none)"
    return str(value) if value != "" else "(not set)"
