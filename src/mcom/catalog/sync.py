"""Product and shipping-method synchronisation: map, queue in the outbox, track per product.

Every product save (admin, REST, bulk upsert) reaches :func:`queue_products` through the
``commerce.hooks.products_saved`` hook, inside the saving transaction. One product → one
``outbox.enqueue``; many → one set-based ``outbox.enqueue_many``. The dedupe key
``product:{sku}`` makes rapid successive saves send the product's latest state once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from mcom import envconfig
from mcom.catalog import mappers, plugins
from mcom.catalog.mappers import Channel
from mcom.catalog.messages import ProductSpec
from mcom.catalog.models import ProductSync, ShippingMethod
from mcom.commerce import config
from mcom.commerce.models import Order, Product, Store
from mcom.service_bus import methods, outbox
from mcom.service_bus.registry import OutboundMessage

log = logging.getLogger("mcom.catalog")

PRODUCT_KEY = "product:"
SHIPPING_KEY = "shipping:"
DEFAULT_SHIPPING = ("flatrate_flatrate", "Flat Rate")


@dataclass(frozen=True)
class MappingContext:
    """What mapping needs besides the product, read once per batch/export."""

    attribute_codes: tuple[str, ...]
    channels: tuple[Channel, ...]


def mapping_context() -> MappingContext:
    """Configured custom attribute codes (default scope) and the stores' channels."""
    codes = tuple(config.get("mcom/catalog/custom_attributes") or ())
    stores = [
        (s.code, str(config.get("mcom/general/sales_channel_id", s) or ""), s.locale) for s in Store.objects.all()
    ]
    return MappingContext(codes, mappers.channels_for(stores))


def spec_for(product: mappers.ProductLike, ctx: MappingContext) -> ProductSpec:
    """Map a product and run the ``after_to_specification`` plugins."""
    spec = mappers.product_spec(product, attribute_codes=ctx.attribute_codes, channels=ctx.channels)
    return plugins.apply(product, spec)


def product_item(product: mappers.ProductLike, ctx: MappingContext) -> outbox.OutboxItem:
    key = f"{PRODUCT_KEY}{product.sku}"
    return outbox.OutboxItem(spec_for(product, ctx).to_params(), entity_key=key, dedupe_key=key)


def sync_enabled() -> bool:
    return envconfig.current().module_enabled("catalog")


def mark_queued(product_ids: Sequence[int], now: datetime) -> None:
    """Set ``last_queued_at`` for many products in one upsert."""
    if not product_ids:
        return
    ProductSync.objects.bulk_create(
        [ProductSync(product_id=pid, last_queued_at=now) for pid in product_ids],
        update_conflicts=True,
        unique_fields=["product"],
        update_fields=["last_queued_at"],
        batch_size=500,
    )


def queue_products(products: Sequence[Product], *, ctx: MappingContext | None = None) -> list[int]:
    """Queue ``product_management.updated`` for each product; returns the outbox log ids.

    Call inside the transaction that saved the products (the ``products_saved`` hook does).
    Does nothing when the catalog module is disabled. Idempotent per waiting message: a product
    whose previous message has not been sent yet gets that message's payload replaced.
    """
    if not products or not sync_enabled():
        return []
    ctx = ctx or mapping_context()
    now = timezone.now()
    with transaction.atomic():
        if len(products) == 1:
            item = product_item(products[0], ctx)
            row = outbox.enqueue(
                methods.PRODUCT_UPDATED, item.params, entity_key=item.entity_key, dedupe_key=item.dedupe_key
            )
            ids = [row.pk]
        else:
            ids = outbox.enqueue_many(methods.PRODUCT_UPDATED, [product_item(p, ctx) for p in products])
        mark_queued([p.pk for p in products if p.pk is not None], now)
    return ids


def on_products_saved(products: Sequence[Product]) -> None:
    """``commerce.hooks.products_saved`` callback (registered at app-ready by ``catalog.jobs``)."""
    queue_products(products)


# ------------------------------------------------------------------------------ delivery outcome


def _product_sku(msg: OutboundMessage) -> str | None:
    return msg.entity_key[len(PRODUCT_KEY) :] if msg.entity_key.startswith(PRODUCT_KEY) else None


def _record(sku: str, **fields: Any) -> None:
    """Update the product's sync row (one UPDATE; created when the product has none yet)."""
    if ProductSync.objects.filter(product__sku=sku).update(**fields):
        return
    pid = Product.objects.filter(sku=sku).values_list("id", flat=True).first()
    if pid is not None:
        ProductSync.objects.update_or_create(product_id=pid, defaults=fields)


def on_sent(msg: OutboundMessage, result: Any) -> None:
    """Outbound route hook: the OMS accepted the product (or shipping method)."""
    sku = _product_sku(msg)
    if sku is not None:
        _record(sku, last_synced_at=timezone.now(), last_error="")


def on_sent_many(sent: Sequence[tuple[OutboundMessage, Any]]) -> None:
    """Set-based :func:`on_sent` (one UPDATE for the products of a recorded run of deliveries)."""
    skus = [sku for sku in (_product_sku(msg) for msg, _ in sent) if sku is not None]
    if not skus:
        return
    now = timezone.now()
    for start in range(0, len(skus), 500):
        part = skus[start:start + 500]
        updated = ProductSync.objects.filter(product__sku__in=part).update(last_synced_at=now, last_error="")
        if updated < len(set(part)):  # products without a sync row yet
            known = set(ProductSync.objects.filter(product__sku__in=part).values_list("product__sku", flat=True))
            for sku in set(part) - known:
                _record(sku, last_synced_at=now, last_error="")


def on_failed(msg: OutboundMessage, error: str, will_retry: bool) -> None:
    """Outbound route hook: keep the last error on the product's sync row."""
    sku = _product_sku(msg)
    if sku is not None:
        suffix = " (will retry)" if will_retry else ""
        _record(sku, last_error=f"{error}{suffix}"[:2000])


# ------------------------------------------------------------------------------ shipping methods


def discover_shipping_methods() -> int:
    """Add the flat rate and every shipping method code seen on orders; returns how many were new."""
    known = set(ShippingMethod.objects.values_list("code", flat=True))
    seen: dict[str, str] = {DEFAULT_SHIPPING[0]: DEFAULT_SHIPPING[1]}
    rows = Order.objects.order_by().values("shipping_method").annotate(title=Max("shipping_description"))
    for row in rows:
        code = (row["shipping_method"] or "").strip()
        if code:
            seen.setdefault(code, row["title"] or "")
    new = []
    for code, title in seen.items():
        if code in known:
            continue
        carrier, method = mappers.split_shipping_code(code)
        new.append(ShippingMethod(code=code, carrier=carrier, method=method, title=title or code))
    ShippingMethod.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def shipping_items(ctx: MappingContext) -> list[outbox.OutboxItem]:
    """One outbox item per active shipping method (distinct SKUs)."""
    items: dict[str, outbox.OutboxItem] = {}
    for sm in ShippingMethod.objects.filter(active=True):
        spec = mappers.shipping_spec(carrier=sm.carrier, method=sm.method, title=sm.title, channels=ctx.channels)
        key = f"{SHIPPING_KEY}{spec.sku}"
        items[spec.sku] = outbox.OutboxItem(spec.to_params(), entity_key=key, dedupe_key=key)
    return list(items.values())


def queue_shipping_methods(*, ctx: MappingContext | None = None, discover: bool = True) -> list[int]:
    """Queue every active shipping method as a ``shipping`` SKU; returns the outbox log ids."""
    if not sync_enabled():
        return []
    if discover:
        discover_shipping_methods()
    ctx = ctx or mapping_context()
    with transaction.atomic():
        items = shipping_items(ctx)
        ids = outbox.enqueue_many(methods.PRODUCT_UPDATED, items) if items else []
        ShippingMethod.objects.filter(active=True).update(last_queued_at=timezone.now())
    return ids
