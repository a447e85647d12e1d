"""Commerce Admin: what the OMS said about refunds (read-only). RMAs and credit memos are in commerce."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from mcom.postsales.models import OmsRefund


@admin.register(OmsRefund)
class OmsRefundAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("order", "rma_number", "credit_note_number", "status", "credit_memo", "updated_at")
    search_fields = ("order__increment_id", "rma_number", "credit_note_number")
    list_filter = ("status",)
    list_select_related = ("order", "credit_memo")
    readonly_fields = ("order", "rma", "rma_number", "credit_note_number", "status", "status_date", "refund_reason",
                       "refund_type", "credit_memo", "payload", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
