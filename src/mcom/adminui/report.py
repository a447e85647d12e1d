"""Read-only figures for the dashboard and the system report (no side effects)."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata

import django
from django.db import connection
from django.db.models import Count

import mcom
from mcom import envconfig
from mcom.observability import activity
from mcom.observability.activity import HourBucket
from mcom.service_bus import registry
from mcom.service_bus.models import CronJobState, LoggedMessage


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    version: str
    enabled: bool


@dataclass(frozen=True)
class QueueRow:
    direction: str
    direction_label: str
    counts: list[tuple[str, int]]  # (status, count) in LoggedMessage.STATUSES order
    total: int


@dataclass(frozen=True)
class CronRow:
    name: str
    every_seconds: float | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    next_run_at: datetime | None
    last_error: str


def version() -> str:
    try:
        return metadata.version("mcom-connector")
    except metadata.PackageNotFoundError:
        return mcom.__version__


def modules() -> list[ModuleInfo]:
    cfg = envconfig.current()
    out = [ModuleInfo("service_bus", version(), True)]
    for name in envconfig.MODULES:
        out.append(ModuleInfo(name, version(), cfg.module_enabled(name)))
    return out


def database() -> dict[str, str]:
    """Backend name and server version of the connected database (no credentials)."""
    vendor = connection.vendor
    with connection.cursor() as cur:
        if vendor == "postgresql":
            cur.execute("SHOW server_version")
        elif vendor == "sqlite":
            cur.execute("SELECT sqlite_version()")
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            return {"vendor": vendor, "version": "", "name": ""}
        row = cur.fetchone()
    name = str(connection.settings_dict.get("NAME") or "")
    if vendor == "sqlite":
        name = name.rsplit("/", 1)[-1]
    return {"vendor": connection.display_name, "version": str(row[0]) if row else "", "name": name}


def status_counts() -> dict[str, int]:
    """Number of logged messages per status (every status present, zero included)."""
    counts = dict.fromkeys((s for s, _ in LoggedMessage.STATUSES), 0)
    for row in LoggedMessage.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def queue_depth() -> list[QueueRow]:
    """Messages per direction and status."""
    counts: dict[str, dict[str, int]] = {
        d: dict.fromkeys((s for s, _ in LoggedMessage.STATUSES), 0) for d, _ in LoggedMessage.DIRECTIONS
    }
    for row in LoggedMessage.objects.order_by().values("direction", "status").annotate(n=Count("id")):
        counts.setdefault(row["direction"], {})[row["status"]] = row["n"]
    labels = dict(LoggedMessage.DIRECTIONS)
    return [QueueRow(d, labels.get(d, d), list(c.items()), sum(c.values())) for d, c in counts.items()]


def cron_rows() -> list[CronRow]:
    """Every registered (enabled) cron job with its last run, plus any state row of an unknown job."""
    states = {s.name: s for s in CronJobState.objects.all()}
    rows: list[CronRow] = []
    for job in sorted(registry.cron_jobs(), key=lambda j: j.name):
        s = states.pop(job.name, None)
        rows.append(
            CronRow(
                job.name,
                job.every_seconds,
                s.last_started_at if s else None,
                s.last_finished_at if s else None,
                s.next_run_at if s else None,
                s.last_error if s else "",
            )
        )
    for name, s in sorted(states.items()):
        rows.append(CronRow(name, None, s.last_started_at, s.last_finished_at, s.next_run_at, s.last_error))
    return rows


def platform_info() -> dict[str, str]:
    cfg = envconfig.current()
    return {
        "mcom": version(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "django": django.get_version(),
        "mode": cfg.mode,
        "os": platform.platform(terse=True),
    }


# --------------------------------------------------------------------------------- activity chart


def hourly_activity(hours: int = 24, now: datetime | None = None) -> list[HourBucket]:
    """Messages created per hour over the last ``hours`` hours (oldest first): in, out, and errors.

    From the hourly table that outlives pruning (:mod:`mcom.observability.activity`).
    """
    return activity.hourly(hours, now)


# ------------------------------------------------------------------------------------- attention


@dataclass(frozen=True)
class Attention:
    """Something the operator should look at, with where to fix it."""

    message: str
    url_name: str
    query: str = ""

    @property
    def url(self) -> str:
        from django.urls import reverse

        path = reverse(f"mcom_admin:{self.url_name}")
        return f"{path}?{self.query}" if self.query else path


def attention() -> list[Attention]:
    """Problems that stop the connector from doing its job, most important first."""
    from mcom.commerce import config
    from mcom.commerce.models import Store
    from mcom.service_bus.models import Registration

    items: list[Attention] = []
    try:
        envconfig.current().require_service_bus()
    except envconfig.ConfigError as e:
        items.append(Attention(f"The OMS cannot be reached: {e}.", "integration"))
    last = Registration.objects.order_by("-created_at", "-id").first()
    if last is None:
        items.append(Attention("The connector has never registered with the bus.", "integration"))
    elif not last.ok:
        items.append(Attention("The last registration with the bus failed.", "integration"))
    for store in Store.objects.all():
        if not config.get("mcom/general/sales_channel_id", store):
            items.append(
                Attention(
                    f"Store “{store.code}” has no Sales Channel ID: its orders are not exported.",
                    "configuration",
                    f"store={store.code}",
                )
            )
    errors = LoggedMessage.objects.filter(status=LoggedMessage.ERROR).count()
    if errors:
        items.append(
            Attention(f"{errors} message{'s' if errors != 1 else ''} in error.", "messages", "status=error")
        )
    return items


# ---------------------------------------------------------------------------------- product sync


@dataclass(frozen=True)
class ProductSyncSummary:
    products: int
    synced: int
    failing: int
    recent_errors: list[tuple[str, datetime | None, str]]  # (sku, last queued, error)


def product_sync() -> ProductSyncSummary:
    """How many products the OMS has received, and the latest product sync errors."""
    from mcom.catalog.models import ProductSync
    from mcom.commerce.models import Product

    errors = (
        ProductSync.objects.exclude(last_error="").select_related("product").order_by("-last_queued_at")[:10]
    )
    return ProductSyncSummary(
        products=Product.objects.count(),
        synced=ProductSync.objects.filter(last_synced_at__isnull=False).count(),
        failing=ProductSync.objects.exclude(last_error="").count(),
        recent_errors=[(s.product.sku, s.last_queued_at, s.last_error) for s in errors],
    )
