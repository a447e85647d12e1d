"""``sampledata:deploy``: a realistic, deterministic store (stores, catalog, stock, orders).

Everything derives from a seeded :class:`random.Random`, so the same options produce the same
skus and quantities: re-running upserts the catalog and stock, and adds new orders (with new
increment ids). Writes are set-based (``bulk_create`` in batches) so 100,000 products take
seconds, not minutes.

Catalog sync: by default no hook runs (``sync=False``), so deploying sample data does not queue a
product-sync flood; export the catalog afterwards with ``mcom oms:catalog-export:run``. With
``sync=True`` ``hooks.products_saved`` runs once per batch of 1,000 products and
``hooks.order_placed`` once per order after commit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from mcom.commerce import config as store_config
from mcom.commerce import hooks, services
from mcom.commerce import sampledata_values as V
from mcom.commerce.models import Order, Product, StockAggregate, StockItem, Store
from mcom.commerce.schemas import AddressIn, OrderChildIn, OrderIn, OrderLineIn, ProductIn, ShippingIn

SKU_PREFIX = "MS"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Reporter(Protocol):
    """Progress sink (the CLI passes a rich progress bar)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...


class _Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class SampleDataError(ValueError):
    """Sample data cannot be deployed as asked; the message is one line."""


@dataclass
class DeployResult:
    stores: int = 0
    aggregates: int = 0
    products_created: int = 0
    products_updated: int = 0
    stock_items: int = 0
    stock_status_rows: int = 0
    orders: int = 0
    first_increment_id: str = ""
    last_increment_id: str = ""


# ------------------------------------------------------------------------------------- stores


#: the sandbox OMS seeds this aggregate: the first store binds to it, so a sandbox snapshot changes its stock
SANDBOX_AGGREGATE = "default"


def aggregate_code(store_code: str) -> str:
    """The stock aggregate of a sample store: ``default`` for the default store, else ``stock_<code>``."""
    return SANDBOX_AGGREGATE if store_code == "default" else f"stock_{store_code}"


def deploy_stores(count: int) -> list[Store]:
    """Create or update ``count`` stores, each linked to its own stock aggregate (the default store to
    the sandbox's aggregate ``default``)."""
    base = str(store_config.get("web/base_url") or DEFAULT_BASE_URL).rstrip("/")
    stores: list[Store] = []
    for n in range(count):
        if n < len(V.STORES):
            code, name, currency, locale, country, _ = V.STORES[n]
        else:
            code, name, currency, locale, country = f"store_{n + 1}", f"Store View {n + 1}", "USD", "en_US", "US"
        agg, _ = StockAggregate.objects.get_or_create(code=aggregate_code(code), defaults={"name": f"{name} stock"})
        store, created = Store.objects.get_or_create(
            code=code,
            defaults={"name": name, "base_url": base if code == "default" else f"{base}/{code}",
                      "currency": currency, "locale": locale, "country": country, "stock_aggregate": agg},
        )
        legacy = f"stock_{code}" != agg.code and store.stock_aggregate is not None \
            and store.stock_aggregate.code == f"stock_{code}"  # bound by an older sampledata:deploy
        if not created and (store.stock_aggregate_id is None or legacy):
            store.stock_aggregate = agg
            store.save(update_fields=["stock_aggregate"])
        stores.append(store)
    return stores


def tax_percent(store: Store) -> Decimal:
    return next((t for code, *_, t in V.STORES if code == store.code), Decimal("0"))


# ------------------------------------------------------------------------------------- catalog


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _price(rng: random.Random, lo: int, hi: int) -> Decimal:
    return Decimal(rng.randint(lo, hi)) + Decimal(rng.choice(["0.00", "0.49", "0.95", "0.99"]))


def _weight(rng: random.Random, lo: float, hi: float) -> Decimal:
    return Decimal(str(round(rng.uniform(lo, hi), 3)))


def generate_products(count: int, rng: random.Random) -> list[ProductIn]:
    """``count`` products: ~70% simple, configurables with 2–5 simple children, bundles of earlier
    simples, virtual products and gift cards. Deterministic for a given ``rng`` state."""
    out: list[ProductIn] = []
    simples: list[str] = []
    seq = 0

    def make(**kw: Any) -> ProductIn:
        return ProductIn.model_construct(**kw)  # our own data: skip re-validation (100k items)

    while len(out) < count:
        seq += 1
        left = count - len(out)
        roll = rng.random()
        noun, (plo, phi), (wlo, whi), sized = rng.choice(V.NOUNS)
        brand, material = rng.choice(V.BRANDS), rng.choice(V.MATERIALS)
        title = f"{rng.choice(V.ADJECTIVES)} {material} {noun}"
        sku = f"{SKU_PREFIX}-{seq:06d}"
        common = {"url_key": f"{_slug(title)}-{seq}", "image_url": f"/media/catalog/product/{sku.lower()}.jpg"}
        enabled = rng.random() > 0.03
        if roll < 0.12 and left >= 3:
            colors = rng.sample(V.COLORS, k=rng.randint(1, 2))
            sizes = rng.sample(V.SIZES, k=rng.randint(1, 3)) if sized else ["OS"]
            combos = [(c, s) for c in colors for s in sizes][: min(5, left - 1)]
            price, children = _price(rng, plo, phi), []
            for color, size in combos:
                child = f"{sku}-{color.upper()}-{size}"
                children.append(child)
                out.append(make(
                    sku=child, name=f"{title} {color} {size}", type="simple", enabled=True, price=price,
                    weight=_weight(rng, wlo, whi), manage_stock=True, url_key=f"{common['url_key']}-{_slug(child)}",
                    image_url=common["image_url"], children_skus=[],
                    custom_attributes={"color": color, "size": size, "material": material, "brand": brand},
                ))
            out.append(make(
                sku=sku, name=title, type="configurable", enabled=enabled, price=price, weight=None,
                manage_stock=True, children_skus=children,
                custom_attributes={"material": material, "brand": brand}, **common,
            ))
        elif roll < 0.17 and len(simples) >= 3:
            parts = rng.sample(simples[-200:], k=rng.randint(2, 3))
            out.append(make(
                sku=sku, name=f"{brand} {noun} Bundle", type="bundle", enabled=enabled,
                price=_price(rng, plo * 2, phi * 2), weight=_weight(rng, wlo * 2, whi * 2), manage_stock=True,
                children_skus=parts, custom_attributes={"brand": brand}, **common,
            ))
        elif roll < 0.25:
            vname, vprice = rng.choice(V.VIRTUAL)
            out.append(make(
                sku=sku, name=f"{brand} {vname}", type="virtual", enabled=enabled, price=Decimal(vprice),
                weight=None, manage_stock=False, children_skus=[], custom_attributes={"brand": brand}, **common,
            ))
        elif roll < 0.29:
            amount = rng.choice(V.GIFT_CARD_AMOUNTS)
            out.append(make(
                sku=sku, name=f"Gift Card {amount}", type="giftcard", enabled=True, price=Decimal(amount),
                weight=None, manage_stock=False, children_skus=[], custom_attributes={"brand": "Store"}, **common,
            ))
        else:
            color = rng.choice(V.COLORS)
            attrs = {"color": color, "material": material, "brand": brand}
            if sized:
                attrs["size"] = rng.choice(V.SIZES)
            out.append(make(
                sku=sku, name=f"{title} {color}", type="simple", enabled=enabled, price=_price(rng, plo, phi),
                weight=_weight(rng, wlo, whi), manage_stock=True, children_skus=[], custom_attributes=attrs,
                **common,
            ))
            if enabled:
                simples.append(sku)
    return out[:count]


def _ids(skus: list[str]) -> Iterator[tuple[int, bool]]:
    for batch in services.chunks(skus):
        yield from Product.objects.filter(sku__in=batch).values_list("id", "manage_stock")


def deploy_stock(skus: list[str], aggregates: list[StockAggregate], rng: random.Random, report: Reporter) -> int:
    """Upsert a stock item per stock-managed product and aggregate (10% out of stock)."""
    rows = [pid for pid, managed in _ids(skus) if managed]
    report.start("Stock items", len(rows) * len(aggregates))
    now, written = timezone.now(), 0
    for batch in services.chunks(rows):
        items = []
        for pid in batch:
            for agg in aggregates:
                qty = Decimal(0 if rng.random() < 0.1 else rng.randint(1, 500))
                items.append(StockItem(product_id=pid, aggregate=agg, qty=qty, is_in_stock=qty > 0, updated_at=now))
        StockItem.objects.bulk_create(
            items, update_conflicts=True, unique_fields=["product", "aggregate"],
            update_fields=["qty", "is_in_stock", "updated_at"],
        )
        written += len(items)
        report.advance(len(items))
    return written


# ------------------------------------------------------------------------------------- orders


def _address(rng: random.Random, country: str, first: str, last: str) -> AddressIn:
    city, region, postcode = rng.choice(V.PLACES.get(country, V.PLACES["US"]))
    return AddressIn(
        firstname=first, lastname=last, street1=f"{rng.randint(1, 999)} {rng.choice(V.STREETS)}", city=city,
        region=region, postcode=postcode, country_id=country, telephone=f"+1 555 {rng.randint(1000000, 9999999)}",
    )


def _line(rng: random.Random, product: ProductIn, pct: Decimal) -> OrderLineIn:
    children = None
    if product.type == "configurable":
        children = [OrderChildIn(sku=rng.choice(product.children_skus))]
    qty = Decimal(1 if product.type in ("giftcard", "virtual") else rng.choice([1, 1, 1, 2, 3]))
    return OrderLineIn(sku=product.sku, qty=qty, tax_percent=pct, children=children)


def generate_orders(count: int, catalog: list[ProductIn], stores: list[Store], rng: random.Random) -> list[OrderIn]:
    """``count`` authorized pending orders of 1–4 lines over ``catalog`` (enabled, sellable items)."""
    sellable = [p for p in catalog if p.enabled and (p.type != "configurable" or p.children_skus)]
    if count and not sellable:
        raise SampleDataError("no enabled products to order; deploy products first (--products N)")
    orders = []
    for n in range(count):
        store = rng.choice(stores)
        pct = tax_percent(store)
        first, last = rng.choice(V.FIRST_NAMES), rng.choice(V.LAST_NAMES)
        picks = {p.sku: p for p in rng.sample(sellable, k=min(len(sellable), rng.randint(1, 4)))}
        method = rng.choice(V.PAYMENT_METHODS)
        orders.append(OrderIn(
            store=store.code, customer_email=f"{_slug(first)}.{_slug(last)}{n % 97}@example.com",
            customer_firstname=first, customer_lastname=last,
            customer_id="" if rng.random() < 0.4 else str(rng.randint(1, 5000)),
            status="pending", payment_method=method, payment_authorized=True,
            payment_transaction_id="" if method == "checkmo" else f"txn_{rng.getrandbits(48):012x}",
            billing_address=_address(rng, store.country, first, last),
            shipping=ShippingIn(amount=Decimal("5.00"), tax_percent=pct),
            lines=[_line(rng, p, pct) for p in picks.values()],
            remote_ip=f"203.0.113.{rng.randint(1, 254)}",
        ))
    return orders


def deploy_orders(orders: list[OrderIn], *, rng: random.Random, report: Reporter, sync: bool) -> list[Order]:
    """Place ``orders`` set-based (validated like ``place_order``), spread over the last 30 days."""
    if not orders:
        return []
    report.start("Orders", len(orders))
    stores = {s.code: s for s in Store.objects.all()}
    skus = {line.sku for o in orders for line in o.lines} | {
        c.sku for o in orders for line in o.lines for c in (line.children or [])
    }
    products = services.load_products(skus)
    products.update(services.load_products(
        s for p in list(products.values()) if p.type == Product.TYPE_BUNDLE for s in p.children_skus
    ))
    ids = services.reserve_increment_ids(len(orders))
    now = timezone.now()
    placed: list[Order] = []
    with transaction.atomic():
        for start in range(0, len(orders), 500):
            batch = orders[start : start + 500]
            planned = []
            for data, inc in zip(batch, ids[start : start + 500], strict=True):
                p = services.build_order(data=data, store=stores[data.store], products=products, increment_id=inc)
                p.order.created_at = p.order.updated_at = now - timedelta(minutes=rng.randint(0, 30 * 24 * 60))
                planned.append(p)
            services.save_planned_orders(planned)
            placed.extend(p.order for p in planned)
            report.advance(len(batch))
        if sync:
            order_ids = [o.pk for o in placed]
            transaction.on_commit(lambda: _run_placed_hooks(order_ids), robust=True)
    return placed


def _run_placed_hooks(order_ids: list[int]) -> None:
    for order in Order.objects.filter(pk__in=order_ids).select_related("store"):
        for hook in list(hooks.order_placed):
            hook(order)


# ------------------------------------------------------------------------------------- deploy


def deploy(
    *, products: int, orders: int, stores: int, seed: int = 42, sync: bool = False, report: Reporter | None = None
) -> DeployResult:
    """Deploy sample data (see the module docstring). Raises :class:`SampleDataError` on bad input."""
    if products < 0 or orders < 0 or stores < 1:
        raise SampleDataError("--products and --orders must be ≥ 0 and --stores ≥ 1")
    report = report or _Silent()
    rng = random.Random(seed)
    result = DeployResult()
    store_rows = deploy_stores(stores)
    result.stores = len(store_rows)
    aggregates = [s.stock_aggregate for s in store_rows if s.stock_aggregate is not None]
    result.aggregates = len({a.pk for a in aggregates})
    aggregates = list({a.pk: a for a in aggregates}.values())

    catalog = generate_products(products, rng)
    report.start("Products", len(catalog))
    on_batch: Callable[[int], None] = report.advance
    try:
        upsert = services.upsert_products(catalog, run_hooks=sync, on_batch=on_batch)
    except services.FieldError as e:
        raise SampleDataError(f"sample catalog rejected: {e}") from None
    result.products_created, result.products_updated = upsert.created, upsert.updated

    result.stock_items = deploy_stock([p.sku for p in catalog], aggregates, rng, report)
    report.start("Stock index", 1)
    result.stock_status_rows = services.reindex_stock()
    report.advance(1)

    if orders and not catalog:
        existing = Product.objects.filter(enabled=True, type__in=["simple", "virtual"])[:1000]
        catalog = [ProductIn.model_construct(sku=p.sku, type=p.type, enabled=True, children_skus=[]) for p in existing]
    order_rows = deploy_orders(generate_orders(orders, catalog, store_rows, rng), rng=rng, report=report, sync=sync)
    result.orders = len(order_rows)
    if order_rows:
        result.first_increment_id, result.last_increment_id = order_rows[0].increment_id, order_rows[-1].increment_id
    return result
