"""The adapter's own bookkeeping: which Oscar order is mirrored by which mcom order, and how far
mcom's state has been applied back to Oscar.

The Oscar side is referred to by primary key (no database foreign key into Oscar's tables), so the
adapter's tables do not depend on how a shop forks Oscar's ``order`` app.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils import timezone


class OrderLink(models.Model):
    """One Oscar order and its mirror in mcom's commerce tables (``order`` is None while the mirror
    failed: ``error`` says why; the mirror job tries again)."""

    oscar_order_id = models.PositiveBigIntegerField(unique=True)
    number = models.CharField(max_length=128)
    order = models.OneToOneField(
        "commerce.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="oscar_link"
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    #: what of the mcom order was applied to Oscar last (see ``project.fingerprint``)
    fingerprint = models.CharField(max_length=255, blank=True)
    #: the last Oscar status the adapter asked for (applied or refused): each target is tried once
    status_target = models.CharField(max_length=100, blank=True)
    is_open = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    synced_at = models.DateTimeField(null=True, blank=True)

    # explicit for the type checker, which runs with mcom's settings (without this app installed)
    objects: ClassVar[models.Manager[OrderLink]] = models.Manager()
    order_id: int | None

    class Meta:
        db_table = "mcom_oscar_order_link"

    def __str__(self) -> str:
        return f"Oscar order {self.number} → {self.order_id or 'not mirrored'}"


class SyncMark(models.Model):
    """A named high-water mark (e.g. the newest stock item applied to Oscar's stock records)."""

    name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[models.Manager[SyncMark]] = models.Manager()

    class Meta:
        db_table = "mcom_oscar_sync_mark"

    def __str__(self) -> str:
        return f"{self.name}@{self.at}"
