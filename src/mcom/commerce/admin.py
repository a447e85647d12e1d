"""The Commerce Admin: branding and the store entities (stores, catalog, stock, orders, post-sales).

Order status and stock edits go through :mod:`mcom.commerce.services`, so the connector's guards
apply (an exported order's status belongs to the OMS; stock belongs to the OMS in production
mode). A refusal is shown as a form error, never a crash.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

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

admin.site.site_header = "Commerce Admin"
admin.site.site_title = "Commerce Admin"
admin.site.index_title = "Commerce Admin"


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ------------------------------------------------------------------------------------- stores


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name", "base_url", "currency", "locale", "country", "stock_aggregate")
    search_fields = ("code", "name")
    list_filter = ("currency", "country")


@admin.register(ConfigValue)
class ConfigValueAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("path", "scope", "scope_code", "value", "updated_at")
    search_fields = ("path", "value", "scope_code")
    list_filter = ("scope",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens are created with ``mcom api:token:create`` (shown once); here they can be deactivated."""

    list_display = ("name", "prefix", "is_active", "created_at", "last_used_at")
    fields = ("name", "prefix", "is_active", "created_at", "last_used_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at")
    search_fields = ("name", "prefix")
    list_filter = ("is_active",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# ------------------------------------------------------------------------------------- catalog


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("sku", "name", "type", "enabled", "price", "manage_stock", "updated_at")
    search_fields = ("sku", "name")
    list_filter = ("type", "enabled", "manage_stock")
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 50
    show_full_result_count = False


@admin.register(StockAggregate)
class StockAggregateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("code", "name")
    search_fields = ("code", "name")


class StockItemForm(forms.ModelForm):  # type: ignore[type-arg]
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


@admin.register(StockItem)
class StockItemAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Stock edits go through ``set_stock`` (guarded; reindexes the row)."""

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

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StockStatus)
class StockStatusAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("sku", "name", "product_type", "parent", "qty_ordered", "qty_shipped", "qty_refunded",
              "qty_canceled", "qty_returned", "price", "tax_percent", "tax_amount", "row_total_incl_tax", "oms_status")
    readonly_fields = fields


class OrderAddressInline(ReadOnlyInline):
    model = OrderAddress
    fields = ("address_type", "firstname", "lastname", "street1", "street2", "city", "region", "postcode",
              "country_id", "telephone")
    readonly_fields = fields


class StatusHistoryInline(ReadOnlyInline):
    model = OrderStatusHistory
    fields = ("created_at", "status", "source", "comment")
    readonly_fields = fields


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = ("oms_shipment_id", "source_id", "method", "shipped_at")
    readonly_fields = fields
    show_change_link = True


class OrderForm(forms.ModelForm):  # type: ignore[type-arg]
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
class OrderAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Orders are placed through the REST API; here only the status can change (guarded)."""

    form = OrderForm
    list_display = ("increment_id", "store", "created_at", "customer_email", "status", "state", "grand_total",
                    "currency", "oms_export_state", "oms_export_attempts")
    search_fields = ("increment_id", "customer_email")
    list_filter = ("status", "state", "oms_export_state", "store", "payment_authorized")
    list_select_related = ("store",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [OrderItemInline, OrderAddressInline, StatusHistoryInline, ShipmentInline]
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


@admin.register(OrderStatusHistory)
class OrderStatusHistoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class ShipmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class CreditMemoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("credit_note_number", "order", "reason", "grand_total", "created_at")
    search_fields = ("credit_note_number", "order__increment_id")
    list_filter = ("reason",)
    list_select_related = ("order",)
    readonly_fields = ("order", "rma", "credit_note_number", "reason", "subtotal", "tax_amount", "grand_total",
                       "created_at")
    inlines = [CreditMemoItemInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class RmaItemInline(ReadOnlyInline):
    model = RmaItem
    fields = ("order_item", "qty", "reason", "condition", "status")
    readonly_fields = fields


@admin.register(Rma)
class RmaAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("request_id", "rma_number", "order", "status", "reason", "created_at")
    search_fields = ("request_id", "rma_number", "order__increment_id")
    list_filter = ("status",)
    list_select_related = ("order",)
    readonly_fields = ("order", "request_id", "rma_number", "status", "created_at", "updated_at")
    inlines = [RmaItemInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rma]:
        return super().get_queryset(request).select_related("order")
