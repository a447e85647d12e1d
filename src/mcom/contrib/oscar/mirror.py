"""Oscar → mcom: mirror Oscar's orders and catalogue into mcom's commerce tables.

Orders: Oscar's ``order_placed`` signal (sent by ``OrderCreator.place_order`` after its transaction
committed) calls :func:`mirror_order`, which writes the mcom order through
:func:`mcom.commerce.services.place_order` and the :class:`OrderLink` in one transaction; mcom's
export rules, outbox and worker do the rest (``hooks.order_placed`` runs after that commit, so the
synchronous mode exports at once). Should the process stop between Oscar's commit and the
mirror's, :func:`mirror_missing` (cron) finds Oscar orders without a link and mirrors them. The
link is unique per Oscar order and mcom never exports an order twice, so one Oscar order is
exported once.

Catalogue: every save of an Oscar product, attribute value or stock record re-mirrors the product
(after commit) through :func:`mcom.commerce.services.upsert_products`, whose ``products_saved``
hook queues mcom's catalog sync; the full catalog export reads the same rows. :func:`mirror_changed_products`
(cron) catches up with products changed since the last pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oscar.core.loading import get_model
from pydantic import ValidationError

from mcom.commerce import services
from mcom.commerce.models import Product as McomProduct
from mcom.commerce.models import Store
from mcom.commerce.schemas import AddressIn, OrderIn, OrderLineIn, ProductIn, ProductType, ShippingIn
from mcom.contrib.oscar import conf
from mcom.contrib.oscar.models import OrderLink, SyncMark

log = logging.getLogger("mcom.contrib.oscar")

HUNDRED = Decimal("100")
FOUR = Decimal("0.0001")
PRODUCTS_MARK = "products"
MIRROR_BATCH = 200


def _oscar(app: str, model: str) -> Any:
    return get_model(app, model)


# ------------------------------------------------------------------------------------- catalogue


def sku_of(product: Any) -> str:
    """The mcom/OMS SKU of an Oscar product: its UPC, else ``oscar-<pk>``."""
    return str(product.upc or f"oscar-{product.pk}")[:64]


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "all"):
        return [_json(v) for v in value.all()]
    if hasattr(value, "option"):  # AttributeOption
        return str(value.option)
    return str(value)


def attributes_of(product: Any) -> dict[str, Any]:
    """Oscar attribute values (a child's over its parent's) as ``{code: JSON value}``."""
    out: dict[str, Any] = {}
    sources = [product.parent, product] if product.parent_id else [product]
    for source in sources:
        for av in source.attribute_values.select_related("attribute", "value_option").all():
            out[av.attribute.code] = _json(av.value)
    return out


def _price(product: Any) -> Decimal:
    prices = [r.price for r in product.stockrecords.all() if r.price is not None]
    return Decimal(min(prices)) if prices else Decimal("0")


def product_in(product: Any) -> ProductIn:
    """One Oscar product as an mcom product: parent → configurable (children by SKU), child and
    stand-alone → simple (virtual when its class needs no shipping)."""
    pclass = product.get_product_class()
    attrs = attributes_of(product)
    kind: ProductType
    if product.is_parent:
        kind = "configurable"
    elif pclass is not None and not pclass.requires_shipping:
        kind = "virtual"
    else:
        kind = "simple"
    weight = attrs.get("weight")
    return ProductIn(
        sku=sku_of(product),
        name=str(product.get_title() or sku_of(product))[:255],
        type=kind,
        enabled=bool(product.is_public),
        price=_price(product) if not product.is_parent else Decimal("0"),
        weight=Decimal(str(weight)) if isinstance(weight, (int, float)) and weight >= 0 else None,
        manage_stock=bool(pclass.track_stock) if pclass is not None and kind != "configurable" else None,
        url_key=str(product.slug or "")[:255],
        custom_attributes={"oscar_product_id": product.pk, **attrs},
        children_skus=[sku_of(c) for c in product.children.all()] if product.is_parent else [],
    )


def _with_family(products: Iterable[Any]) -> list[Any]:
    """The products plus their parents and the parents' children, children before parents."""
    Product = _oscar("catalogue", "Product")
    ids = {p.pk for p in products}
    parents = {p.parent_id for p in products if p.parent_id}
    parents |= {p.pk for p in products if p.is_parent}
    family = ids | parents | set(Product.objects.filter(parent_id__in=parents).values_list("pk", flat=True))
    qs = Product.objects.filter(pk__in=family).select_related("parent", "product_class", "parent__product_class")
    return sorted(qs.prefetch_related("stockrecords", "children"), key=lambda p: (p.is_parent, p.pk))


def mirror_products(products: Sequence[Any]) -> int:
    """Create or update the mcom products of ``products`` (with their parent/children); returns how
    many were written. ``products_saved`` runs inside the transaction (mcom's catalog sync)."""
    if not products:
        return 0
    items = [product_in(p) for p in _with_family(products)]
    return services.upsert_products(items).total


def mirror_product_ids(ids: Iterable[int]) -> int:
    Product = _oscar("catalogue", "Product")
    wanted = sorted(set(ids))
    return mirror_products(list(Product.objects.filter(pk__in=wanted))) if wanted else 0


def mirror_changed_products() -> int:
    """Cron catch-up: mirror every Oscar product updated since the last pass (``date_updated``)."""
    Product = _oscar("catalogue", "Product")
    mark, _ = SyncMark.objects.get_or_create(name=PRODUCTS_MARK)
    now = timezone.now()
    qs = Product.objects.all() if mark.at is None else Product.objects.filter(date_updated__gte=mark.at)
    written = 0
    ids = list(qs.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), 500):
        written += mirror_product_ids(ids[start:start + 500])
    SyncMark.objects.filter(pk=mark.pk).update(at=now)
    return written


# ------------------------------------------------------------------------------------- orders


def _pct(incl: Decimal | None, excl: Decimal | None) -> Decimal:
    if not incl or not excl or excl <= 0 or incl <= excl:
        return Decimal("0")
    return min(((Decimal(incl) / Decimal(excl) - 1) * HUNDRED).quantize(FOUR, rounding=ROUND_HALF_UP), HUNDRED)


def _address(address: Any, email: str) -> AddressIn:
    country = getattr(address.country, "iso_3166_1_a2", "") or "ZZ"
    return AddressIn(
        firstname=(address.first_name or address.last_name or "-")[:128],
        lastname=(address.last_name or "-")[:128],
        street1=(address.line1 or "-")[:255],
        street2=", ".join(x for x in (address.line2, address.line3) if x)[:255],
        city=(address.line4 or "-")[:128],
        region=(address.state or "")[:128],
        postcode=(address.postcode or "-")[:20],
        country_id=country[:2],
        telephone=str(getattr(address, "phone_number", "") or "")[:32],
        email=email,
    )


def _payment(order: Any, adapter: conf.AdapterConf) -> tuple[str, str]:
    source = order.sources.select_related("source_type").order_by("pk").first()
    if source is None:
        return adapter.payment_method, ""
    return (str(source.source_type.code or adapter.payment_method)[:64], str(source.reference or "")[:128])


def order_in(order: Any, store: str, adapter: conf.AdapterConf) -> OrderIn:
    """An Oscar order as an mcom order: same number, lines with Oscar's unit prices (excl. tax) and
    tax rates, each line's Oscar id in ``custom_attributes.oscar_line_id``.

    Oscar places an order only after its checkout took the payment, so the mirror is authorized.
    Raises ``ValueError`` (pydantic's ``ValidationError``) when the order cannot be expressed.
    """
    email = str(order.email or "")
    shipping = order.shipping_address
    billing = order.billing_address or shipping
    if billing is None:
        raise ValueError(f"Oscar order {order.number} has neither a billing nor a shipping address")
    method, reference = _payment(order, adapter)
    lines = []
    for line in order.lines.select_related("product").order_by("pk"):
        if line.product is None:
            raise ValueError(f"Oscar order {order.number}: line {line.pk} has no product any more")
        unit_excl = line.unit_price_excl_tax if line.unit_price_excl_tax is not None else (
            line.line_price_before_discounts_excl_tax / max(line.quantity, 1))
        discount = max(Decimal(line.line_price_before_discounts_excl_tax) - Decimal(line.line_price_excl_tax), Decimal(0))
        lines.append(OrderLineIn(
            sku=sku_of(line.product), qty=Decimal(line.quantity), price=Decimal(unit_excl),
            name=str(line.title)[:255], tax_percent=_pct(line.unit_price_incl_tax, line.unit_price_excl_tax),
            discount_amount=discount, custom_attributes={"oscar_line_id": line.pk},
        ))
    return OrderIn(
        increment_id=str(order.number),
        store=store,
        customer_email=email,
        customer_id=str(order.user_id or ""),
        currency=str(order.currency)[:3],
        status="pending",
        payment_method=method,
        payment_authorized=True,
        payment_transaction_id=reference,
        billing_address=_address(billing, email),
        shipping_address=_address(shipping, email) if shipping is not None else None,
        shipping=ShippingIn(
            method=str(order.shipping_code or "oscar")[:64], description=str(order.shipping_method or "")[:255],
            amount=Decimal(order.shipping_excl_tax), tax_percent=_pct(order.shipping_incl_tax, order.shipping_excl_tax),
        ),
        lines=lines,
        custom_attributes={"oscar_order_id": order.pk},
    )


def ensure_store(code: str, site: Any) -> Store:
    """The mcom store (sales channel) of an Oscar site, created on first use."""
    from django.conf import settings

    store = Store.objects.filter(code=code).first()
    if store is None:
        name = getattr(site, "name", "") or code
        store, _ = Store.objects.get_or_create(code=code, defaults={
            "name": str(name)[:255], "currency": str(getattr(settings, "OSCAR_DEFAULT_CURRENCY", "USD"))[:3],
            "base_url": f"http://{site.domain}" if getattr(site, "domain", "") else "",
        })
    return store


def _error_text(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())[:2000]
    return str(e)[:2000]


def mirror_order(order: Any) -> OrderLink:
    """Mirror one Oscar order into mcom (idempotent: an order already mirrored is left alone).

    A failure (a product the catalogue mirror cannot express, an unusable address) leaves a link
    without mcom order and with the error; nothing half-way is stored and Oscar's order is untouched.
    """
    adapter = conf.current()
    existing = OrderLink.objects.filter(oscar_order_id=order.pk).first()
    if existing is not None and existing.order_id is not None:
        return existing
    try:
        with transaction.atomic():
            link, _ = OrderLink.objects.select_for_update().get_or_create(
                oscar_order_id=order.pk, defaults={"number": str(order.number)[:128]})
            if link.order_id is not None:
                return link
            products = [line.product for line in order.lines.select_related("product") if line.product is not None]
            known = set(McomProduct.objects.filter(sku__in=[sku_of(p) for p in products]).values_list("sku", flat=True))
            mirror_products([p for p in products if sku_of(p) not in known])  # those the catalogue mirror missed
            store = ensure_store(adapter.store_for_site(order.site_id), order.site)
            placed = services.place_order(order_in(order, store.code, adapter))
            link.order = placed
            link.error = ""
            link.attempts += 1
            link.save(update_fields=["order", "error", "attempts"])
        log.info("Oscar order %s mirrored as mcom order %s", order.number, placed.increment_id)
        return link
    except (ValueError, services.FieldError) as e:
        reason = _error_text(e)
        log.warning("Oscar order %s not mirrored: %s", order.number, reason)
        link, _ = OrderLink.objects.get_or_create(oscar_order_id=order.pk, defaults={"number": str(order.number)[:128]})
        link.error = reason
        link.attempts += 1
        link.save(update_fields=["error", "attempts"])
        return link


def mirror_missing(limit: int = MIRROR_BATCH) -> int:
    """Cron catch-up: mirror Oscar orders that have no link yet, or whose mirror failed (oldest first,
    at most ``limit``). Returns how many are mirrored now."""
    Order = _oscar("order", "Order")
    linked = OrderLink.objects.filter(oscar_order_id=OuterRef("pk"), order__isnull=False)
    failed = OrderLink.objects.filter(oscar_order_id=OuterRef("pk"), order__isnull=True, attempts__gte=5)
    done = 0
    for order in Order.objects.filter(~Exists(linked), ~Exists(failed)).order_by("pk")[:limit]:
        if mirror_order(order).order_id is not None:
            done += 1
    return done

