"""Store-side data the connector reads and writes: stores, catalog, stock, orders and post-sales.

Table names follow the commerce platform where the seed names them
(``cataloginventory_stock_item``, ``cataloginventory_stock_status``, ``core_config_data``).
Money is ``Decimal`` (12, 4).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

MONEY: dict[str, Any] = {"max_digits": 12, "decimal_places": 4, "default": Decimal("0")}
QTY: dict[str, Any] = {"max_digits": 12, "decimal_places": 4, "default": Decimal("0")}


class StockAggregate(models.Model):
    """An OMS stock aggregate; ``code`` is the opaque ``aggregate_id`` of stock snapshots."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Store(models.Model):
    """A store view / sales channel of the commerce side."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=255)
    base_url = models.URLField(blank=True)
    locale = models.CharField(max_length=10, default="en_US")
    currency = models.CharField(max_length=3, default="USD")
    country = models.CharField(max_length=2, default="US")
    stock_aggregate = models.ForeignKey(
        StockAggregate, null=True, blank=True, on_delete=models.SET_NULL, related_name="stores"
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class ConfigValue(models.Model):
    """Admin configuration (``Stores > Configuration``): one value per path and scope."""

    SCOPE_DEFAULT = "default"
    SCOPE_STORE = "store"
    SCOPES = [(SCOPE_DEFAULT, "Default"), (SCOPE_STORE, "Store")]

    scope = models.CharField(max_length=16, choices=SCOPES, default=SCOPE_DEFAULT)
    scope_code = models.CharField(max_length=32, blank=True, default="")
    path = models.CharField(max_length=255)
    value = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "core_config_data"
        constraints = [
            models.UniqueConstraint(fields=["scope", "scope_code", "path"], name="core_config_data_scope_path")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.scope_code}:{self.path}"


class Product(models.Model):
    TYPE_SIMPLE = "simple"
    TYPE_CONFIGURABLE = "configurable"
    TYPE_BUNDLE = "bundle"
    TYPE_VIRTUAL = "virtual"
    TYPE_GIFTCARD = "giftcard"
    TYPES = [
        (TYPE_SIMPLE, "Simple"),
        (TYPE_CONFIGURABLE, "Configurable"),
        (TYPE_BUNDLE, "Bundle"),
        (TYPE_VIRTUAL, "Virtual"),
        (TYPE_GIFTCARD, "Gift card"),
    ]

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=TYPES, default=TYPE_SIMPLE)
    enabled = models.BooleanField(default=True)
    price = models.DecimalField(**MONEY)
    weight = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    manage_stock = models.BooleanField(default=True, help_text="Virtual products are exempt from stock")
    url_key = models.CharField(max_length=255, blank=True)
    image_url = models.CharField(max_length=255, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)
    children_skus = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return self.sku


class StockItem(models.Model):
    """Quantity of a product in a stock aggregate, as last told by the OMS."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_items")
    aggregate = models.ForeignKey(StockAggregate, on_delete=models.CASCADE, related_name="stock_items")
    qty = models.DecimalField(**QTY)
    is_in_stock = models.BooleanField(default=False)
    unlimited = models.BooleanField(default=False)
    snapshot_at = models.DateTimeField(null=True, blank=True, help_text="creation time of the OMS snapshot applied")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "cataloginventory_stock_item"
        constraints = [
            models.UniqueConstraint(fields=["product", "aggregate"], name="cataloginventory_stock_item_product_agg")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.aggregate_id}: {self.qty}"


class StockStatus(models.Model):
    """The storefront stock index, rebuilt from ``cataloginventory_stock_item`` by reindex."""

    # A derived index, rebuilt from stock items: no database-level foreign keys (their deferred
    # checks doubled the commit cost of snapshot applies); Django still cascades deletes.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="stock_statuses", db_constraint=False
    )
    aggregate = models.ForeignKey(
        StockAggregate, on_delete=models.CASCADE, related_name="stock_statuses", db_constraint=False
    )
    qty = models.DecimalField(**QTY)
    stock_status = models.BooleanField(default=False)

    class Meta:
        verbose_name = "stock status"
        verbose_name_plural = "stock statuses"
        db_table = "cataloginventory_stock_status"
        constraints = [
            models.UniqueConstraint(fields=["product", "aggregate"], name="cataloginventory_stock_status_product_agg")
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.aggregate_id}: {'in stock' if self.stock_status else 'out of stock'}"


class Order(models.Model):
    STATE_NEW = "new"
    STATE_PROCESSING = "processing"
    STATE_COMPLETE = "complete"
    STATE_CLOSED = "closed"
    STATE_CANCELED = "canceled"
    STATE_HOLDED = "holded"
    STATES = [
        (STATE_NEW, "New"),
        (STATE_PROCESSING, "Processing"),
        (STATE_COMPLETE, "Complete"),
        (STATE_CLOSED, "Closed"),
        (STATE_CANCELED, "Canceled"),
        (STATE_HOLDED, "On hold"),
    ]

    # Export to the OMS (owned by the sales module).
    EXPORT_NOT_EXPORTED = "not_exported"
    EXPORT_QUEUED = "queued"
    EXPORT_EXPORTED = "exported"
    EXPORT_FAILED = "failed"
    EXPORT_SKIPPED = "skipped"
    EXPORT_STATES = [
        (EXPORT_NOT_EXPORTED, "Not exported"),
        (EXPORT_QUEUED, "Queued"),
        (EXPORT_EXPORTED, "Exported"),
        (EXPORT_FAILED, "Failed"),
        (EXPORT_SKIPPED, "Skipped"),
    ]

    increment_id = models.CharField(max_length=32, unique=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders")
    state = models.CharField(max_length=32, choices=STATES, default=STATE_NEW)
    status = models.CharField(max_length=64, default="pending", db_index=True)
    oms_status = models.CharField(max_length=64, blank=True, help_text="last status code sent by the OMS, verbatim")
    oms_status_reason = models.CharField(max_length=64, blank=True)
    oms_status_date = models.DateTimeField(
        null=True, blank=True, help_text="date of the newest OMS state applied (update status_date, shipment date)")
    payment_method = models.CharField(max_length=64, default="checkmo")
    payment_authorized = models.BooleanField(default=False)
    payment_transaction_id = models.CharField(max_length=128, blank=True)
    customer_id = models.CharField(max_length=64, blank=True, help_text="empty for guests")
    customer_email = models.EmailField()
    customer_firstname = models.CharField(max_length=128, blank=True)
    customer_lastname = models.CharField(max_length=128, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    shipping_amount = models.DecimalField(**MONEY)
    shipping_tax_amount = models.DecimalField(**MONEY)
    shipping_method = models.CharField(max_length=64, default="flatrate_flatrate")
    shipping_description = models.CharField(max_length=255, blank=True, default="Flat Rate")
    discount_amount = models.DecimalField(**MONEY)
    grand_total = models.DecimalField(**MONEY)
    total_refunded = models.DecimalField(**MONEY)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    oms_export_state = models.CharField(max_length=16, choices=EXPORT_STATES, default=EXPORT_NOT_EXPORTED)
    oms_export_attempts = models.PositiveIntegerField(default=0)
    oms_export_error = models.TextField(blank=True)
    oms_exported_at = models.DateTimeField(null=True, blank=True)
    oms_next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["oms_export_state", "status"], name="order_export_state_status"),
            models.Index(fields=["store", "created_at"], name="order_store_created"),
        ]

    def __str__(self) -> str:
        return self.increment_id

    @property
    def is_exported(self) -> bool:
        return self.oms_export_state == self.EXPORT_EXPORTED

    @property
    def is_guest(self) -> bool:
        return not self.customer_id


class OrderAddress(models.Model):
    BILLING = "billing"
    SHIPPING = "shipping"
    TYPES = [(BILLING, "Billing"), (SHIPPING, "Shipping")]

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="addresses")
    address_type = models.CharField(max_length=16, choices=TYPES)
    firstname = models.CharField(max_length=128)
    lastname = models.CharField(max_length=128)
    street1 = models.CharField(max_length=255)
    street2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=128)
    region = models.CharField(max_length=128, blank=True)
    postcode = models.CharField(max_length=20)
    country_id = models.CharField(max_length=2)
    telephone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)

    class Meta:
        verbose_name = "order address"
        verbose_name_plural = "order addresses"
        constraints = [models.UniqueConstraint(fields=["order", "address_type"], name="order_address_type")]

    def __str__(self) -> str:
        return f"{self.address_type}: {self.firstname} {self.lastname}, {self.city}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    product_type = models.CharField(max_length=16, default=Product.TYPE_SIMPLE)
    qty_ordered = models.DecimalField(**QTY)
    qty_shipped = models.DecimalField(**QTY)
    qty_refunded = models.DecimalField(**QTY)
    qty_canceled = models.DecimalField(**QTY)
    qty_returned = models.DecimalField(**QTY)
    price = models.DecimalField(**MONEY, help_text="unit price excluding tax")
    price_incl_tax = models.DecimalField(**MONEY)
    tax_percent = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal("0"))
    tax_amount = models.DecimalField(**MONEY)
    discount_amount = models.DecimalField(**MONEY)
    row_total = models.DecimalField(**MONEY)
    row_total_incl_tax = models.DecimalField(**MONEY)
    oms_status = models.CharField(max_length=64, blank=True)
    oms_status_reason = models.CharField(max_length=64, blank=True)
    custom_attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku} x {self.qty_ordered}"


class OrderStatusHistory(models.Model):
    SOURCE_LOCAL = "local"
    SOURCE_OMS = "oms"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_history")
    status = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=16, default=SOURCE_LOCAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "order status history entry"
        verbose_name_plural = "order status history"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.status} ({self.source})"


class Shipment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    oms_shipment_id = models.CharField(max_length=128, blank=True)
    dedupe_key = models.CharField(max_length=255, unique=True, help_text="identity of the OMS shipment message")
    source_id = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=64, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.oms_shipment_id or f"shipment {self.pk}"


class ShipmentItem(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="shipment_items")
    qty = models.DecimalField(**QTY)

    def __str__(self) -> str:
        return f"{self.order_item_id} x {self.qty}"


class ShipmentTrack(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="tracks")
    carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=128, blank=True)
    tracking_url = models.CharField(max_length=512, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        verbose_name = "shipment tracking"
        verbose_name_plural = "shipment tracking"

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}".strip()


class Rma(models.Model):
    """A return (RMA). ``rma_number`` is the OMS's id once the OMS has answered."""

    STATUS_PENDING = "pending"  # requested locally, not yet acknowledged by the OMS
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="rmas")
    request_id = models.CharField(max_length=64, unique=True)
    rma_number = models.CharField(max_length=64, null=True, blank=True, unique=True)
    status = models.CharField(max_length=64, default=STATUS_PENDING)
    reason = models.CharField(max_length=255, blank=True)
    tracking_carrier = models.CharField(max_length=64, blank=True)
    tracking_number = models.CharField(max_length=128, blank=True)
    tracking_url = models.CharField(max_length=512, blank=True)
    label_url = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "return (RMA)"
        verbose_name_plural = "returns (RMAs)"

    def __str__(self) -> str:
        return self.rma_number or self.request_id


class RmaItem(models.Model):
    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="rma_items")
    qty = models.DecimalField(**QTY)
    reason = models.CharField(max_length=255, blank=True)
    condition = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "return item"
        verbose_name_plural = "return items"

    def __str__(self) -> str:
        return f"{self.order_item_id} x {self.qty}"


class CreditMemo(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="credit_memos")
    rma = models.ForeignKey(Rma, null=True, blank=True, on_delete=models.SET_NULL, related_name="credit_memos")
    credit_note_number = models.CharField(max_length=64)
    reason = models.CharField(max_length=128, blank=True)
    subtotal = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    grand_total = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "credit memo"
        verbose_name_plural = "credit memos"
        constraints = [
            models.UniqueConstraint(fields=["order", "credit_note_number"], name="creditmemo_order_note_number")
        ]

    def __str__(self) -> str:
        return self.credit_note_number


class CreditMemoItem(models.Model):
    credit_memo = models.ForeignKey(CreditMemo, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="credit_memo_items")
    qty = models.DecimalField(**QTY)
    row_total = models.DecimalField(**MONEY, help_text="net")
    tax_amount = models.DecimalField(**MONEY)
    tax_percent = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal("0"))
    row_total_incl_tax = models.DecimalField(**MONEY, help_text="gross")

    def __str__(self) -> str:
        return f"{self.order_item_id} x {self.qty}"


class ApiToken(models.Model):
    """A REST API token. Only the SHA-256 of the token is stored; the token is shown once."""

    name = models.CharField(max_length=128, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, help_text="first characters of the token, to recognise it")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Sequence(models.Model):
    """A named counter (order increment ids); advanced with an atomic UPDATE."""

    name = models.CharField(max_length=32, unique=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
