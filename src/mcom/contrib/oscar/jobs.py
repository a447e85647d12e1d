"""The adapter's cron jobs (run by ``mcom cron:run`` / ``mcom serve`` with the Oscar settings)."""

from __future__ import annotations

from typing import Any

from mcom.contrib.oscar import mirror, project
from mcom.service_bus import registry

#: every cron pass ([cron] interval_seconds): the shop sees the OMS's changes within seconds
APPLY_EVERY_SECONDS = 0.0
MIRROR_EVERY_SECONDS = 60.0


@registry.cron_job("oscar.apply", every_seconds=APPLY_EVERY_SECONDS)
def apply_to_oscar() -> dict[str, Any]:
    """mcom → Oscar: order statuses, shipments, cancellations, refunds, returns and stock."""
    out: dict[str, Any] = project.apply_open_orders()
    out["stock_records"] = project.apply_stock()
    return out


@registry.cron_job("oscar.mirror", every_seconds=MIRROR_EVERY_SECONDS)
def mirror_from_oscar() -> dict[str, int]:
    """Oscar → mcom catch-up: orders the signal did not mirror, products changed since the last pass."""
    return {"orders": mirror.mirror_missing(), "products": mirror.mirror_changed_products()}

