"""Cron jobs, outbound declarations and hook registrations of the catalog module (app-ready)."""

from __future__ import annotations

import logging

from mcom.catalog import export, sync
from mcom.commerce import hooks
from mcom.service_bus import methods, registry
from mcom.service_bus.models import LoggedMessage

log = logging.getLogger("mcom.catalog")

EXPORT_EVERY_SECONDS = 60.0
SHIPPING_EVERY_SECONDS = 24 * 3600.0

registry.outbound(
    methods.PRODUCT_UPDATED,
    module="catalog",
    kind=LoggedMessage.KIND_EVENT,
    on_sent=sync.on_sent,
    on_sent_many=sync.on_sent_many,
    on_failed=sync.on_failed,
)
hooks.register(hooks.products_saved, sync.on_products_saved)


def shipping_skus() -> list[str]:
    """The SKUs of the shipping methods (the OMS lists them with the products, e.g. in stock snapshots)."""
    from mcom.catalog.mappers import shipping_sku
    from mcom.catalog.models import ShippingMethod

    return [shipping_sku(c, m) for c, m in ShippingMethod.objects.values_list("carrier", "method")]


hooks.register(hooks.non_stock_skus, shipping_skus)


@registry.cron_job("catalog.export", every_seconds=EXPORT_EVERY_SECONDS, module="catalog")
def run_scheduled_export() -> str:
    """Run a full-catalog export scheduled with ``--schedule-only`` or from the admin."""
    task = export.run_pending()
    if task is None:
        return "no export pending"
    log.info("scheduled catalog export #%s finished: %s (%s/%s)", task.pk, task.status, task.processed, task.total)
    return f"export #{task.pk} {task.status} ({task.processed}/{task.total})"


@registry.cron_job("catalog.shipping_methods", every_seconds=SHIPPING_EVERY_SECONDS, module="catalog")
def sync_shipping_methods() -> str:
    """Publish the shipping methods as SKUs once a day (new methods seen on orders included)."""
    ids = sync.queue_shipping_methods()
    return f"{len(ids)} shipping method(s) queued"
