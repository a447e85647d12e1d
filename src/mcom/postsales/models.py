"""Post-sales records of the connector itself (the store's RMAs and credit memos live in commerce).

:class:`RmaLine` records which exported order lines (units) a return covers, so a later return
picks other units and the OMS's per-line statuses have a home. :class:`OmsRefund` keeps every
refund the OMS announced (``refund_management.updated``), also the ones that do not produce a
credit memo yet (``PENDINGRELEASE``), so the admin and support can see what the OMS said after the
message log is pruned.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from mcom.commerce.models import QTY, CreditMemo, Order, Rma, RmaItem


class RmaLine(models.Model):
    """One OMS line of a return: the wire line (one unit of an order item, as the sales module
    exported it) an :class:`~mcom.commerce.models.RmaItem` covers, with the OMS's status for it."""

    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="oms_lines")
    rma_item = models.ForeignKey(RmaItem, on_delete=models.CASCADE, related_name="oms_lines")
    line_id = models.CharField(max_length=64, help_text="order line id as exported")
    line_number = models.PositiveIntegerField()
    qty = models.DecimalField(**QTY)
    status = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "mcom_postsales_rma_line"
        ordering = ["line_number"]
        constraints = [models.UniqueConstraint(fields=["rma", "line_id"], name="mcom_postsales_rma_line_unique")]

    def __str__(self) -> str:
        return f"{self.line_id} ({self.status or '-'})"


class OmsRefund(models.Model):
    """One OMS refund of an order, identified by RMA number + credit note number (either may be empty)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="oms_refunds")
    rma = models.ForeignKey(Rma, null=True, blank=True, on_delete=models.SET_NULL, related_name="oms_refunds")
    rma_number = models.CharField(max_length=64, blank=True)
    credit_note_number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=64, help_text="last status code sent by the OMS, normalised")
    status_date = models.CharField(max_length=64, blank=True, help_text="as sent by the OMS")
    refund_reason = models.CharField(max_length=128, blank=True)
    refund_type = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, help_text="params.refund of the last message")
    credit_memo = models.OneToOneField(
        CreditMemo, null=True, blank=True, on_delete=models.SET_NULL, related_name="oms_refund"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "mcom_postsales_refund"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "rma_number", "credit_note_number"], name="mcom_postsales_refund_identity"
            )
        ]
        verbose_name = "OMS refund"

    def __str__(self) -> str:
        return f"{self.order_id}:{self.rma_number or '-'}:{self.credit_note_number or '-'} ({self.status})"
