"""The Commerce Admin: branding and the store entities (stores, catalog, stock, orders, post-sales).

Order status and stock edits go through :mod:`mcom.commerce.services`, so the connector's guards
apply (an exported order's status belongs to the OMS; stock belongs to the OMS in production
mode). A refusal is shown as a form error, never a crash.

- Orders: the change page shows the OMS export (state, attempts, last error, exported at), the
  status history, and a post-sales block (shipments with items and tracking, returns, credit
  memos). Connector modules add pages and buttons through :data:`order_admin_extensions`
  (postsales: **Request return**, see :mod:`mcom.postsales.admin`). An order the OMS knows is
  never deleted here (no Delete button, no bulk delete).
- Products: the last OMS sync (``catalog.ProductSync``, reached through the reverse relation
  ``product.oms_sync``) is a list column and read-only fields.
- Stock items are view-only in production mode (the OMS owns stock), except items of products
  that do not manage stock (``manage_stock`` off), which the OMS does not control.

commerce imports no connector module (see docs/architecture.md): they register into this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from mcom.adminui.permissions import ReadOnlyInProductionMixin, stock_editable
from mcom.commerce import hooks, services
from mcom.commerce.models import (
    ApiToken,
    ConfigValue,
    CreditMemo,
    CreditMemoItem,
    Order,
    OrderAddress,
    OrderItem,
    OrderStatusHistory,
    Product,
    Rma,
    RmaItem,
    Shipment,
    ShipmentItem,
    ShipmentTrack,
    StockAggregate,
    StockItem,
    StockStatus,
    Store,
)

if TYPE_CHECKING:
    from datetime import datetime

admin.site.site_header = "Commerce Admin"
admin.site.site_title = "Commerce Admin"
admin.site.index_title = "Commerce Admin"


class KeepRecords:
    """Mixin: records that came from (or went to) the OMS are never deleted in the admin."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline[Any, Any]):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ------------------------------------------------------------------------------------- stores


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin[Store]):
    list_display = ("code", "name", "base_url", "currency", "locale", "country", "stock_aggregate")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a base URL typed without scheme
    search_fields = ("code", "name")
    list_filter = ("currency", "country")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A store with orders is kept (deleting it would delete its orders)."""
        if obj is not None and obj.orders.exists():
            return False
        return bool(super().has_delete_permission(request, obj))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(ConfigValue)
class ConfigValueAdmin(admin.ModelAdmin[ConfigValue]):
    list_display = ("path", "scope", "scope_code", "value", "updated_at")
    search_fields = ("path", "value", "scope_code")
    list_filter = ("scope",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Tokens are created with ``mcom api:token:create`` (shown once); here they can be deactivated."""

    list_display = ("name", "prefix", "is_active", "created_at", "last_used_at")
    fields = ("name", "prefix", "is_active", "created_at", "last_used_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")
    search_fields = ("name", "prefix")
    list_filter = ("is_active",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# ------------------------------------------------------------------------------------- catalog


def _when(value: datetime | None) -> str:
    return formats.localize(timezone.localtime(value)) if value else ""


def _product_sync(product: Product) -> Any:
    """The product's ``catalog.ProductSync`` row, or None (never queued for the OMS)."""
    try:
        return product.oms_sync
    except (AttributeError, ObjectDoesNotExist):
        return None


class ProductSyncFilter(admin.SimpleListFilter):
    title = "OMS sync"
    parameter_name = "oms_sync"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("error", "Last sync failed"), ("pending", "Queued, not synced yet"), ("synced", "Synced"),
                ("never", "Never queued")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        value = self.value()
        if value == "error":
            return queryset.filter(oms_sync__isnull=False).exclude(oms_sync__last_error="")
        if value == "pending":
            return queryset.filter(oms_sync__last_queued_at__isnull=False, oms_sync__last_synced_at__isnull=True,
                                   oms_sync__last_error="")
        if value == "synced":
            return queryset.filter(oms_sync__last_synced_at__isnull=False, oms_sync__last_error="")
        if value == "never":
            return queryset.filter(oms_sync__isnull=True)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    """Products; the last OMS sync (``catalog.ProductSync``) is shown read-only."""

    list_display = ("sku", "name", "type", "enabled", "price", "manage_stock", "oms_last_sync", "updated_at")
    search_fields = ("sku", "name")
    list_filter = ("type", "enabled", "manage_stock", ProductSyncFilter)
    list_select_related = ("oms_sync",)
    fieldsets = (
        (None, {"fields": ("sku", "name", "type", "enabled", "price", "weight", "manage_stock", "url_key",
                           "image_url", "custom_attributes", "children_skus", "created_at", "updated_at")}),
        ("OMS sync", {"fields": ("oms_last_queued_at", "oms_last_synced_at", "oms_last_sync_error")}),
    )
    readonly_fields = ("created_at", "updated_at", "oms_last_queued_at", "oms_last_synced_at",
                       "oms_last_sync_error")
    list_per_page = 50
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        """Save through the service so the product is queued for the OMS (catalog sync)."""
        services.save_product(obj)

    @admin.display(description="OMS sync")
    def oms_last_sync(self, obj: Product) -> str:
        sync = _product_sync(obj)
        if sync is None or not (sync.last_queued_at or sync.last_synced_at or sync.last_error):
            return "never queued"
        if sync.last_error:
            return format_html('<span class="mcom-sync-error" title="{}">failed: {}</span>', sync.last_error,
                               Truncator(sync.last_error).chars(60))
        if sync.last_synced_at and (not sync.last_queued_at or sync.last_synced_at >= sync.last_queued_at):
            return f"synced {_when(sync.last_synced_at)}"
        since = f" (last synced {_when(sync.last_synced_at)})" if sync.last_synced_at else ""
        return f"queued {_when(sync.last_queued_at)}{since}"

    @admin.display(description="Last queued for the OMS")
    def oms_last_queued_at(self, obj: Product) -> str:
        sync = _product_sync(obj)
        return _when(sync.last_queued_at) if sync is not None else ""

    @admin.display(description="Last delivered to the OMS")
    def oms_last_synced_at(self, obj: Product) -> str:
        sync = _product_sync(obj)
        return _when(sync.last_synced_at) if sync is not None else ""

    @admin.display(description="Last sync error")
    def oms_last_sync_error(self, obj: Product) -> str:
        sync = _product_sync(obj)
        return str(sync.last_error) if sync is not None else ""


@admin.register(StockAggregate)
class StockAggregateAdmin(admin.ModelAdmin[StockAggregate]):
    list_display = ("code", "name")
    search_fields = ("code", "name")


class StockItemForm(forms.ModelForm[StockItem]):
    class Meta:
        model = StockItem
        fields = ("product", "aggregate", "qty")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        product = data.get("product")
        if product is not None:
            try:
                for guard in list(hooks.stock_edit_guard):
                    guard(product)
            except hooks.ChangeRefused as e:
                raise forms.ValidationError(str(e)) from None
        return data


STOCK_READ_ONLY_NOTE = (
    "Production mode: stock is managed by the OMS, so stock items are read-only here. Items of products "
    "that do not manage stock (manage stock off, e.g. virtual products) are exempt and stay editable."
)


@admin.register(StockItem)
class StockItemAdmin(ReadOnlyInProductionMixin, admin.ModelAdmin[StockItem]):
    """Stock edits go through ``set_stock`` (guarded; reindexes the row).

    Production mode: view-only (the OMS owns stock) — except the items of products with
    ``manage_stock`` off, which the OMS does not control (the inventory guard exempts them too).
    Developer mode: editable.
    """

    form = StockItemForm
    list_display = ("product", "aggregate", "qty", "is_in_stock", "unlimited", "snapshot_at", "updated_at")
    search_fields = ("product__sku",)
    list_filter = ("aggregate", "is_in_stock")
    list_select_related = ("product", "aggregate")
    raw_id_fields = ("product",)
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: StockItem, form: Any, change: bool) -> None:
        try:
            item = services.set_stock(obj.product, obj.aggregate, obj.qty)
        except (hooks.ChangeRefused, services.FieldError) as e:
            messages.error(request, f"Stock not changed: {e}")
            return
        obj.pk, obj.is_in_stock, obj.updated_at = item.pk, item.is_in_stock, item.updated_at

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.product.manage_stock:  # exempt: the OMS does not manage its stock
            return bool(admin.ModelAdmin.has_change_permission(self, request, obj))
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        note = {} if stock_editable() else {"stock_read_only_note": STOCK_READ_ONLY_NOTE}
        return super().changelist_view(request, {**(extra_context or {}), **note})

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        note = {} if stock_editable() else {"stock_read_only_note": STOCK_READ_ONLY_NOTE}
        return super().changeform_view(request, object_id, form_url, {**(extra_context or {}), **note})


@admin.register(StockStatus)
class StockStatusAdmin(admin.ModelAdmin[StockStatus]):
    """The storefront index: rebuilt from stock items, never edited."""

    list_display = ("product", "aggregate", "qty", "stock_status")
    search_fields = ("product__sku",)
    list_filter = ("aggregate", "stock_status")
    list_select_related = ("product", "aggregate")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ------------------------------------------------------------------------------------- orders


def _qty(value: Any) -> str:
    return formats.number_format(value, decimal_pos=None).rstrip("0").rstrip(".,") or "0"


class OrderItemInline(ReadOnlyInline):
    """Order lines in a table that fits a 1366 px screen: quantities and amounts are one column each."""

    model = OrderItem
    fields = ("sku", "name", "product_type", "parent", "quantities", "price", "tax", "row_total_incl_tax", "oms_status")
    readonly_fields = fields

    @admin.display(description="Qty ordered / shipped / canceled / refunded / returned")
    def quantities(self, obj: OrderItem) -> str:
        return " / ".join(_qty(v) for v in (obj.qty_ordered, obj.qty_shipped, obj.qty_canceled, obj.qty_refunded,
                                              obj.qty_returned))

    @admin.display(description="Tax")
    def tax(self, obj: OrderItem) -> str:
        return f"{obj.tax_amount} ({_qty(obj.tax_percent)} %)"


class OrderAddressInline(ReadOnlyInline):
    model = OrderAddress
    fields = ("address_type", "firstname", "lastname", "street1", "street2", "city", "region", "postcode",
              "country_id", "telephone")
    readonly_fields = fields


class StatusHistoryInline(ReadOnlyInline):
    model = OrderStatusHistory
    fields = ("created_at", "status", "source", "comment")
    readonly_fields = fields


@dataclass(frozen=True)
class OrderTool:
    """A button of the order change page (object tools), offered by a connector module."""

    label: str
    url: str
    css_class: str = ""


@dataclass(frozen=True)
class OrderAdminExtension:
    """What a connector module adds to the order admin (registered from its ``admin.py``).

    ``urls(order_admin)`` returns extra URL patterns (below ``<order id>/``); ``tools(order_admin,
    request, order)`` the buttons to offer on that order's page (none when it does not apply).
    """

    urls: Callable[[OrderAdmin], list[URLPattern]]
    tools: Callable[[OrderAdmin, HttpRequest, Order], list[OrderTool]]


#: filled by connector modules (postsales: Request return); commerce imports none of them
order_admin_extensions: list[OrderAdminExtension] = []
#: ``fn(code) -> words`` of a credit memo reason code, first non-empty answer wins (postsales)
credit_memo_reason_labels: list[Callable[[str], str]] = []


def credit_memo_reason(code: str) -> str:
    """A credit memo's reason as words (the OMS code in brackets), or the code itself."""
    for label in credit_memo_reason_labels:
        words = label(code)
        if words:
            return words
    return code


class OrderForm(forms.ModelForm[Order]):
    status = forms.ChoiceField(choices=[(s, s) for s in services.STATUS_STATE])
    status_comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                     help_text="Added to the status history with a status change.")

    class Meta:
        model = Order
        fields = ("status",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.status if self.instance and self.instance.pk else ""
        if current and current not in services.STATUS_STATE:  # a status set by the OMS
            field = self.fields["status"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(current, current), *list(field.choices)]  # type: ignore[arg-type]

    def clean_status(self) -> str:
        status = str(self.cleaned_data["status"])
        order = self.instance
        if order.pk and status != order.status:
            try:
                for guard in list(hooks.order_status_guard):
                    guard(order, status)
            except hooks.ChangeRefused as e:
                raise forms.ValidationError(str(e)) from None
        return status


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    """Orders are placed through the REST API; here only the status can change (guarded)."""

    form = OrderForm
    list_display = ("increment_id", "store", "created_at", "customer_email", "status_and_state", "total",
                    "oms_export")
    search_fields = ("increment_id", "customer_email")
    list_filter = ("status", "state", "oms_export_state", "store", "payment_authorized")
    list_select_related = ("store",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    # Shipments (items, tracking), returns and credit memos: a read-only block rendered by
    # admin/commerce/order/change_form.html from :meth:`post_sales_context`.
    inlines = [OrderItemInline, OrderAddressInline, StatusHistoryInline]
    fieldsets = (
        ("Order", {"fields": ("increment_id", "store", "created_at", "state", "status", "status_comment",
                              "oms_status", "oms_status_reason")}),
        ("OMS export", {"fields": ("oms_export_state", "oms_export_attempts", "oms_export_error",
                                   "oms_exported_at", "oms_next_attempt_at")}),
        ("Customer", {"fields": ("customer_email", "customer_firstname", "customer_lastname", "customer_id",
                                 "remote_ip")}),
        ("Payment and shipping", {"fields": ("payment_method", "payment_authorized", "payment_transaction_id",
                                             "shipping_method", "shipping_description")}),
        ("Totals", {"fields": ("currency", "subtotal", "discount_amount", "shipping_amount",
                               "shipping_tax_amount", "tax_amount", "grand_total", "total_refunded")}),
        ("Custom attributes", {"fields": ("custom_attributes",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "increment_id", "store", "created_at", "state", "oms_status", "oms_status_reason",
        "oms_export_state", "oms_export_attempts", "oms_export_error", "oms_exported_at", "oms_next_attempt_at",
        "customer_email", "customer_firstname", "customer_lastname", "customer_id", "remote_ip",
        "payment_method", "payment_authorized", "payment_transaction_id", "shipping_method",
        "shipping_description", "currency", "subtotal", "discount_amount", "shipping_amount",
        "shipping_tax_amount", "tax_amount", "grand_total", "total_refunded", "custom_attributes",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Status (state)", ordering="status")
    def status_and_state(self, obj: Order) -> str:
        return obj.status if obj.status == obj.state else f"{obj.status} ({obj.state})"

    @admin.display(description="Grand total", ordering="grand_total")
    def total(self, obj: Order) -> str:
        return f"{obj.grand_total} {obj.currency}"

    @admin.display(description="OMS export", ordering="oms_export_state")
    def oms_export(self, obj: Order) -> str:
        label = obj.get_oms_export_state_display()
        return f"{label} ({obj.oms_export_attempts} attempts)" if obj.oms_export_attempts > 1 else label

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        """Apply a status change through ``change_order_status`` (guards run); nothing else is editable."""
        if not change:
            return
        status = str(form.cleaned_data.get("status", obj.status))
        comment = str(form.cleaned_data.get("status_comment") or "")
        original = Order.objects.get(pk=obj.pk)
        obj.status = original.status  # never saved directly
        if status == original.status and not comment:
            return
        try:
            services.change_order_status(obj, status, comment=comment or f"Changed in the admin by {request.user}")
        except (hooks.ChangeRefused, services.FieldError) as e:
            messages.error(request, f"Status not changed: {e}")

    # ------------------------------------------------------------------ post-sales block

    def post_sales_context(self, order: Order) -> dict[str, Any]:
        """Shipments with items and tracking, returns with items, credit memos with items."""
        items = OrderItem.objects.order_by("id")
        return {
            "shipments": list(order.shipments.order_by("created_at", "id").prefetch_related(
                Prefetch("items", ShipmentItem.objects.select_related("order_item").order_by("id")), "tracks")),
            "rmas": list(order.rmas.order_by("-created_at", "-id").prefetch_related(
                Prefetch("items", RmaItem.objects.select_related("order_item").order_by("id")))),
            "credit_memos": list(order.credit_memos.order_by("created_at", "id").select_related("rma")
                                 .prefetch_related(Prefetch("items", CreditMemoItem.objects.select_related(
                                     "order_item").order_by("id")))),
            "has_shipped_items": items.filter(order=order, qty_shipped__gt=0).exists(),
        }

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        order = self.get_object(request, unquote(object_id))
        if order is not None:
            post_sales = self.post_sales_context(order)
            context.update(post_sales)
            context["order_tools"] = [tool for ext in order_admin_extensions for tool in ext.tools(self, request, order)]
            for memo in post_sales["credit_memos"]:
                setattr(memo, "reason_words", credit_memo_reason(memo.reason))  # noqa: B010 - template-only value
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        extra = [pattern for ext in order_admin_extensions for pattern in ext.urls(self)]
        return [*extra, *super().get_urls()]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """An order the OMS knows (exported or being exported) is never deleted here."""
        if obj is not None and obj.oms_export_state != Order.EXPORT_NOT_EXPORTED:
            return False
        return bool(super().has_delete_permission(request, obj))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete cannot tell exported orders apart
        return actions


@admin.register(OrderStatusHistory)
class OrderStatusHistoryAdmin(KeepRecords, admin.ModelAdmin[OrderStatusHistory]):
    list_display = ("order", "created_at", "status", "source", "comment")
    search_fields = ("order__increment_id",)
    list_filter = ("source", "status")
    list_select_related = ("order",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ------------------------------------------------------------------------------------- post-sales


class ShipmentItemInline(ReadOnlyInline):
    model = ShipmentItem
    fields = ("order_item", "qty")
    readonly_fields = fields


class ShipmentTrackInline(ReadOnlyInline):
    model = ShipmentTrack
    fields = ("carrier", "tracking_number", "tracking_url", "comment")
    readonly_fields = fields


@admin.register(Shipment)
class ShipmentAdmin(KeepRecords, admin.ModelAdmin[Shipment]):
    list_display = ("order", "oms_shipment_id", "source_id", "method", "shipped_at", "created_at")
    search_fields = ("order__increment_id", "oms_shipment_id", "tracks__tracking_number")
    list_filter = ("method",)
    list_select_related = ("order",)
    readonly_fields = ("order", "oms_shipment_id", "dedupe_key", "source_id", "method", "shipped_at", "created_at")
    inlines = [ShipmentItemInline, ShipmentTrackInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class CreditMemoItemInline(ReadOnlyInline):
    model = CreditMemoItem
    fields = ("order_item", "qty", "row_total", "tax_percent", "tax_amount", "row_total_incl_tax")
    readonly_fields = fields


@admin.register(CreditMemo)
class CreditMemoAdmin(KeepRecords, admin.ModelAdmin[CreditMemo]):
    list_display = ("credit_note_number", "order", "reason_words", "grand_total", "created_at")
    search_fields = ("credit_note_number", "order__increment_id")
    list_filter = ("reason",)
    list_select_related = ("order",)
    fields = ("order", "rma", "credit_note_number", "reason_words", "subtotal", "tax_amount", "grand_total",
              "created_at")
    readonly_fields = fields
    inlines = [CreditMemoItemInline]

    @admin.display(description="Reason", ordering="reason")
    def reason_words(self, obj: CreditMemo) -> str:
        return credit_memo_reason(obj.reason)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class RmaItemInline(ReadOnlyInline):
    model = RmaItem
    fields = ("order_item", "qty", "reason", "condition", "status")
    readonly_fields = fields


@admin.register(Rma)
class RmaAdmin(KeepRecords, admin.ModelAdmin[Rma]):
    list_display = ("request_id", "rma_number", "order", "status", "reason", "created_at")
    search_fields = ("request_id", "rma_number", "order__increment_id")
    list_filter = ("status",)
    list_select_related = ("order",)
    readonly_fields = ("order", "request_id", "rma_number", "status", "created_at", "updated_at")
    inlines = [RmaItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rma]:
        return super().get_queryset(request).select_related("order")
