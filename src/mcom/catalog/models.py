"""Catalog module state: per-product sync, full-catalog export tasks, shipping methods as SKUs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from mcom.commerce.models import Product


class ProductSync(models.Model):
    """When a product was last queued for the OMS, last delivered, and the last delivery error."""

    product = models.OneToOneField(Product, primary_key=True, on_delete=models.CASCADE, related_name="oms_sync")
    last_queued_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "mcom_catalog_product_sync"
        verbose_name = "product sync"

    def __str__(self) -> str:
        return f"sync of product #{self.pk}"


class CatalogExportTask(models.Model):
    """A full-catalog export. At most one task is *open* (pending or running) at a time.

    ``slot`` is ``"open"`` while pending/running and NULL otherwise; its unique constraint makes
    "only one export at a time" a database guarantee instead of a check-then-create race.
    ``last_product_id`` is the keyset cursor a resumed export continues from.
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    FAILED = "failed"
    STATUSES = [
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (COMPLETE, "Complete"),
        (CANCELLED, "Cancelled"),
        (FAILED, "Failed"),
    ]
    OPEN = "open"
    #: a running task whose heartbeat is older than this is considered interrupted
    STALE_AFTER = timedelta(seconds=120)

    status = models.CharField(max_length=16, choices=STATUSES, default=PENDING, db_index=True)
    slot = models.CharField(max_length=8, null=True, blank=True, unique=True, default=OPEN)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0, help_text="messages delivered during the export itself")
    last_product_id = models.BigIntegerField(default=0)
    shipping_done = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=64, blank=True, help_text="cli, admin, cron")

    class Meta:
        db_table = "mcom_catalog_export_task"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"catalog export #{self.pk} ({self.display_status})"

    def is_interrupted(self, now: datetime | None = None) -> bool:
        """Running, but nobody has reported progress for :attr:`STALE_AFTER` (the process died)."""
        if self.status != self.RUNNING:
            return False
        beat = self.heartbeat_at or self.started_at or self.created_at
        return (now or timezone.now()) - beat > self.STALE_AFTER

    @property
    def display_status(self) -> str:
        return "interrupted" if self.is_interrupted() else self.status

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 and self.status == self.COMPLETE else (
            min(100.0, 100.0 * self.processed / self.total) if self.total else 0.0
        )


class ShippingMethod(models.Model):
    """A shipping method exported to the OMS as a SKU of type ``shipping`` (§8.6).

    ``code`` is the commerce method code (``flatrate_flatrate``); the SKU is derived from
    carrier and method (flat rate → ``STANDARD``). Methods seen on orders are added
    automatically by the shipping sync; an operator can disable one.
    """

    code = models.CharField(max_length=64, unique=True)
    carrier = models.CharField(max_length=32)
    method = models.CharField(max_length=64)
    title = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    last_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mcom_catalog_shipping_method"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def sku(self) -> str:
        from mcom.catalog.mappers import shipping_sku

        return shipping_sku(self.carrier, self.method)
