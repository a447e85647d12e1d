"""Store-side use cases: place an order, change its status, upsert products, edit and index stock.

Every function validates what it is given, writes in one transaction and calls the hooks of
:mod:`mcom.commerce.hooks` at their documented moments (guards before a local change,
``products_saved`` inside the transaction, ``order_placed`` after commit). Business validation
failures raise :class:`FieldError` whose locations mirror the payload (``("lines", 0, "sku")``),
so the REST layer answers them exactly like schema errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from mcom.commerce import hooks
from mcom.commerce.models import (
    Order,
    OrderAddress,
    OrderItem,
    OrderStatusHistory,
    Product,
    StockAggregate,
    StockItem,
    StockStatus,
    Store,
)
from mcom.commerce.models import (
    Sequence as Counter,
)
from mcom.commerce.schemas import AddressIn, OrderIn, OrderLineIn, ProductIn

log = logging.getLogger("mcom.commerce")

Loc = tuple[str | int, ...]
T = TypeVar("T")

BATCH_SIZE = 1_000
CENT = Decimal("0.01")
HUNDRED = Decimal("100")
ORDER_SEQUENCE = "order"

# Local order statuses and the state each one belongs to (the seed's status → state model).
STATUS_STATE: dict[str, str] = {
    "pending": Order.STATE_NEW,
    "payment_review": Order.STATE_NEW,
    "processing": Order.STATE_PROCESSING,
    "fraud": Order.STATE_PROCESSING,
    "holded": Order.STATE_HOLDED,
    "complete": Order.STATE_COMPLETE,
    "closed": Order.STATE_CLOSED,
    "canceled": Order.STATE_CANCELED,
}
PARENT_TYPES = (Product.TYPE_CONFIGURABLE, Product.TYPE_BUNDLE)
#: counted in whole units: a fractional quantity of these is refused (virtual products may be fractional)
UNIT_TYPES = (Product.TYPE_SIMPLE, Product.TYPE_CONFIGURABLE, Product.TYPE_BUNDLE, Product.TYPE_GIFTCARD)
#: the largest amount or quantity the DecimalField(max_digits=12, decimal_places=4) columns hold
MAX_AMOUNT = Decimal("99999999.9999")
NO_STOCK_TYPES = (Product.TYPE_VIRTUAL, Product.TYPE_GIFTCARD)


class FieldError(ValueError):
    """Business validation failed. ``errors`` is a list of ``(loc, message)``; ``str()`` is one line."""

    def __init__(self, errors: Sequence[tuple[Loc, str]]) -> None:
        self.errors: list[tuple[Loc, str]] = list(errors)
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.errors))

    def prefixed(self, *prefix: str | int) -> FieldError:
        return FieldError([((*prefix, *loc), msg) for loc, msg in self.errors])


def fits(value: Decimal) -> bool:
    """True when ``value`` fits the money/quantity columns (12 digits, 4 decimals)."""
    return abs(value) <= MAX_AMOUNT


def too_large(value: Decimal) -> str:
    return f"{value} is larger than the largest amount or quantity a column holds ({MAX_AMOUNT})"


def whole_units(product: Product, qty: Decimal) -> str:
    """Why ``qty`` of ``product`` is refused as fractional ("" when it is fine)."""
    if product.type in UNIT_TYPES and qty != qty.to_integral_value():
        return f"{product.type} product {product.sku!r} is counted in whole units; {qty} is fractional"
    return ""


def money(value: Decimal) -> Decimal:
    """Round to cents, half up (the commerce platform's rounding)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def chunks(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------------------------- orders


@dataclass
class PlannedOrder:
    """An order built in memory (unsaved), ready for :func:`save_planned_orders`."""

    order: Order
    addresses: list[OrderAddress]
    lines: list[tuple[OrderItem, list[OrderItem]]]


def reserve_increment_ids(count: int) -> list[str]:
    """Reserve ``count`` consecutive order increment ids (``000000001`` style); safe under concurrency.

    Ids already taken by orders created with an explicit increment id are skipped.
    """
    out: list[str] = []
    while len(out) < count:
        need = count - len(out)
        with transaction.atomic():
            Counter.objects.bulk_create([Counter(name=ORDER_SEQUENCE, value=0)], ignore_conflicts=True)
            Counter.objects.filter(name=ORDER_SEQUENCE).update(value=F("value") + need)
            end = Counter.objects.get(name=ORDER_SEQUENCE).value
        candidates = [f"{n:09d}" for n in range(end - need + 1, end + 1)]
        taken = set(Order.objects.filter(increment_id__in=candidates).values_list("increment_id", flat=True))
        out.extend(c for c in candidates if c not in taken)
    return out


def load_products(skus: Iterable[str]) -> dict[str, Product]:
    wanted = sorted(set(skus))
    found: dict[str, Product] = {}
    for batch in chunks(wanted, 500):
        found.update((p.sku, p) for p in Product.objects.filter(sku__in=batch))
    return found


def _line_children(
    i: int, line: OrderLineIn, product: Product, products: dict[str, Product], errors: list[tuple[Loc, str]]
) -> list[tuple[Product, Decimal]]:
    """The child products of a configurable/bundle line, with their qty per parent unit."""
    if line.children is None:
        if product.type == Product.TYPE_CONFIGURABLE:
            errors.append((("lines", i, "children"), f"configurable product {product.sku!r} needs the chosen child"))
            return []
        if product.type != Product.TYPE_BUNDLE:
            return []
        pairs: list[tuple[str, Decimal, Loc]] = [(s, Decimal("1"), ("lines", i, "sku")) for s in product.children_skus]
    else:
        if product.type not in PARENT_TYPES:
            errors.append((("lines", i, "children"), f"{product.type} product {product.sku!r} has no children"))
            return []
        if product.type == Product.TYPE_CONFIGURABLE and len(line.children) != 1:
            errors.append((("lines", i, "children"), "a configurable line needs exactly one child"))
            return []
        pairs = [(c.sku, c.qty, ("lines", i, "children", j, "sku")) for j, c in enumerate(line.children)]
    out: list[tuple[Product, Decimal]] = []
    for sku, qty, loc in pairs:
        child = products.get(sku)
        qty_loc = (*loc[:-1], "qty")
        if child is None:
            errors.append((loc, f"unknown sku {sku!r}"))
        elif product.children_skus and sku not in product.children_skus:
            errors.append((loc, f"{sku!r} is not a child of {product.sku!r}"))
        elif whole_units(child, qty * line.qty):
            errors.append((qty_loc if line.children is not None else ("lines", i, "qty"), whole_units(child, qty * line.qty)))
        elif not fits(qty * line.qty):
            errors.append((qty_loc if line.children is not None else ("lines", i, "qty"), too_large(qty * line.qty)))
        else:
            out.append((child, qty))
    return out


def _address(kind: str, a: AddressIn, fallback_email: str) -> OrderAddress:
    return OrderAddress(
        address_type=kind,
        firstname=a.firstname,
        lastname=a.lastname,
        street1=a.street1,
        street2=a.street2,
        city=a.city,
        region=a.region,
        postcode=a.postcode,
        country_id=a.country_id.upper(),
        telephone=a.telephone,
        email=a.email or fallback_email,
    )


def build_order(*, data: OrderIn, store: Store, products: dict[str, Product], increment_id: str) -> PlannedOrder:
    """Validate ``data`` against the catalog and compute every amount; nothing is saved.

    Per line: ``row_total = price × qty``, ``tax = (row_total − discount) × tax_percent``,
    ``row_total_incl_tax = row_total + tax`` (cents, half up). Order: ``subtotal = Σ row_total``,
    ``tax_amount = Σ tax + shipping tax``, ``grand_total = subtotal − discount + tax + shipping``.
    Discounts are positive amounts. Children of configurable/bundle lines are items with the
    parent's ``tax_percent`` and zero amounts (the parent carries the price).
    Raises :class:`FieldError` listing every problem.
    """
    errors: list[tuple[Loc, str]] = []
    if data.status not in STATUS_STATE:
        errors.append((("status",), f"unknown order status {data.status!r}"))
    now = timezone.now()
    lines: list[tuple[OrderItem, list[OrderItem]]] = []
    subtotal = tax = discount = Decimal("0")
    for i, line in enumerate(data.lines):
        product = products.get(line.sku)
        if product is None:
            errors.append((("lines", i, "sku"), f"unknown sku {line.sku!r}"))
            continue
        if not product.enabled:
            errors.append((("lines", i, "sku"), f"product {line.sku!r} is disabled"))
            continue
        if whole_units(product, line.qty):
            errors.append((("lines", i, "qty"), whole_units(product, line.qty)))
            continue
        children = _line_children(i, line, product, products, errors)
        price = line.price if line.price is not None else product.price
        pct = line.tax_percent
        row_total = money(price * line.qty)
        row_discount = money(line.discount_amount)
        if row_discount > row_total:
            errors.append((("lines", i, "discount_amount"), "discount is larger than the row total"))
            continue
        row_tax = money((row_total - row_discount) * pct / HUNDRED)
        if not fits(row_total + row_tax) or not fits(money(price * (HUNDRED + pct) / HUNDRED)):
            errors.append((("lines", i, "qty"), f"row total: {too_large(row_total + row_tax)}"))
            continue
        parent = OrderItem(
            product=product,
            sku=product.sku,
            name=line.name or product.name,
            product_type=product.type,
            qty_ordered=line.qty,
            price=price,
            price_incl_tax=money(price * (HUNDRED + pct) / HUNDRED),
            tax_percent=pct,
            tax_amount=row_tax,
            discount_amount=row_discount,
            row_total=row_total,
            row_total_incl_tax=row_total + row_tax,
            custom_attributes=line.custom_attributes,
        )
        kids = [
            OrderItem(
                product=child,
                sku=child.sku,
                name=child.name,
                product_type=child.type,
                qty_ordered=qty * line.qty,
                tax_percent=pct,
            )
            for child, qty in children
        ]
        lines.append((parent, kids))
        subtotal += row_total
        tax += row_tax
        discount += row_discount
    if errors:
        raise FieldError(errors)
    shipping = money(data.shipping.amount)
    shipping_tax = money(shipping * data.shipping.tax_percent / HUNDRED)
    grand_total = subtotal - discount + tax + shipping_tax + shipping
    for total in (subtotal, tax + shipping_tax, shipping + shipping_tax, grand_total):
        if not fits(total):
            raise FieldError([(("lines",), f"order total: {too_large(total)}")])
    email = data.customer_email
    billing = data.billing_address
    order = Order(
        increment_id=increment_id,
        store=store,
        state=STATUS_STATE[data.status],
        status=data.status,
        payment_method=data.payment_method,
        payment_authorized=data.payment_authorized,
        payment_transaction_id=data.payment_transaction_id,
        customer_id=data.customer_id,
        customer_email=email,
        customer_firstname=data.customer_firstname or billing.firstname,
        customer_lastname=data.customer_lastname or billing.lastname,
        currency=(data.currency or store.currency).upper(),
        subtotal=subtotal,
        tax_amount=tax + shipping_tax,
        shipping_amount=shipping,
        shipping_tax_amount=shipping_tax,
        shipping_method=data.shipping.method,
        shipping_description=data.shipping.description,
        discount_amount=discount,
        grand_total=grand_total,
        remote_ip=data.remote_ip,
        custom_attributes=data.custom_attributes,
        created_at=now,
        updated_at=now,
    )
    addresses = [
        _address(OrderAddress.BILLING, billing, email),
        _address(OrderAddress.SHIPPING, data.shipping_address or billing, email),
    ]
    return PlannedOrder(order=order, addresses=addresses, lines=lines)


def save_planned_orders(planned: Sequence[PlannedOrder], *, comment: str = "Order placed") -> None:
    """Insert planned orders set-based (orders, addresses, parent items, child items, history).

    Must run inside a transaction; relies on ``bulk_create`` returning primary keys (PostgreSQL,
    SQLite ≥ 3.35).
    """
    Order.objects.bulk_create([p.order for p in planned], batch_size=500)
    addresses: list[OrderAddress] = []
    parents: list[OrderItem] = []
    history: list[OrderStatusHistory] = []
    for p in planned:
        for a in p.addresses:
            a.order = p.order
            addresses.append(a)
        for parent, _ in p.lines:
            parent.order = p.order
            parents.append(parent)
        history.append(
            OrderStatusHistory(
                order=p.order, status=p.order.status, comment=comment, source=OrderStatusHistory.SOURCE_LOCAL,
                created_at=p.order.created_at,
            )
        )
    OrderAddress.objects.bulk_create(addresses, batch_size=500)
    OrderItem.objects.bulk_create(parents, batch_size=500)
    children: list[OrderItem] = []
    for p in planned:
        for parent, kids in p.lines:
            for kid in kids:
                kid.order = p.order
                kid.parent = parent
                children.append(kid)
    OrderItem.objects.bulk_create(children, batch_size=500)
    OrderStatusHistory.objects.bulk_create(history, batch_size=500)


def _run_order_placed(order_id: int) -> None:
    order = Order.objects.select_related("store").get(pk=order_id)
    for hook in list(hooks.order_placed):
        hook(order)


def place_order(data: OrderIn) -> Order:
    """Place an order: validate, compute totals, save order + addresses + items + history.

    Raises :class:`FieldError` (unknown store or sku, duplicate increment id, bad discount, unknown
    status). Not idempotent unless ``data.increment_id`` is given (a repeat then fails as a
    duplicate). The ``hooks.order_placed`` callbacks run after commit; a failing callback is
    logged and does not undo the order.
    """
    store = Store.objects.filter(code=data.store).first()
    if store is None:
        raise FieldError([(("store",), f"unknown store {data.store!r}")])
    skus = [line.sku for line in data.lines]
    skus += [c.sku for line in data.lines for c in (line.children or [])]
    products = load_products(skus)
    bundle_children = [s for p in products.values() if p.type == Product.TYPE_BUNDLE for s in p.children_skus]
    products.update(load_products(s for s in bundle_children if s not in products))
    if data.increment_id and Order.objects.filter(increment_id=data.increment_id).exists():
        raise FieldError([(("increment_id",), f"order {data.increment_id!r} already exists")])
    planned = build_order(data=data, store=store, products=products, increment_id=data.increment_id or "")
    increment_id = data.increment_id or reserve_increment_ids(1)[0]  # reserved only for a valid order
    planned.order.increment_id = increment_id
    try:
        with transaction.atomic():
            save_planned_orders([planned])
            order_id = planned.order.pk
            transaction.on_commit(lambda: _run_order_placed(order_id), robust=True)
    except IntegrityError:
        if Order.objects.filter(increment_id=increment_id).exists():
            raise FieldError([(("increment_id",), f"order {increment_id!r} already exists")]) from None
        raise
    log.info("order %s placed (store %s, %d lines)", increment_id, store.code, len(planned.lines))
    return planned.order


def change_order_status(order: Order, status: str, *, comment: str = "", source: str = "local") -> Order:
    """Set ``order``'s status (and the state it belongs to) and record it in the status history.

    ``source="local"`` (admin, REST): the status must be one of :data:`STATUS_STATE` and every
    ``hooks.order_status_guard`` runs first, on the locked row — a guard raises
    :class:`hooks.ChangeRefused` (e.g. the order is already exported, so the OMS owns its status).
    ``source="oms"``: no guards; an unknown status keeps the current state. Setting the current
    status again without a comment changes nothing. Returns the updated order (the same instance).
    """
    local = source == OrderStatusHistory.SOURCE_LOCAL
    if local and status not in STATUS_STATE:
        raise FieldError([(("status",), f"unknown order status {status!r} (known: {', '.join(STATUS_STATE)})")])
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == status and not comment:
            return locked
        if local:
            for guard in list(hooks.order_status_guard):
                guard(locked, status)
        locked.status = status
        locked.state = STATUS_STATE.get(status, locked.state)
        locked.updated_at = timezone.now()
        locked.save(update_fields=["status", "state", "updated_at"])
        OrderStatusHistory.objects.create(order=locked, status=status, comment=comment, source=source)
    order.status, order.state, order.updated_at = locked.status, locked.state, locked.updated_at
    return order


# ------------------------------------------------------------------------------------- catalog


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    skus: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated


PRODUCT_UPDATE_FIELDS = [
    "name", "type", "enabled", "price", "weight", "manage_stock", "url_key", "image_url",
    "custom_attributes", "children_skus", "updated_at",
]


def _validate_products(items: Sequence[ProductIn]) -> None:
    errors: list[tuple[Loc, str]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.sku in seen:
            errors.append(((i, "sku"), f"duplicate sku {item.sku!r} (also at {seen[item.sku]})"))
        seen.setdefault(item.sku, i)
        if item.children_skus and item.type not in PARENT_TYPES:
            errors.append(((i, "children_skus"), f"a {item.type} product has no children"))
        if item.sku in item.children_skus:
            errors.append(((i, "children_skus"), "a product cannot be its own child"))
    wanted = {c for item in items for c in item.children_skus if c not in seen}
    known: set[str] = set()
    for batch in chunks(sorted(wanted), 500):
        known.update(Product.objects.filter(sku__in=batch).values_list("sku", flat=True))
    for i, item in enumerate(items):
        for j, child in enumerate(item.children_skus):
            if child not in seen and child not in known:
                errors.append(((i, "children_skus", j), f"unknown sku {child!r}"))
    if errors:
        raise FieldError(errors[:100])


def _product(item: ProductIn, now: datetime) -> Product:
    manage = item.manage_stock if item.manage_stock is not None else item.type not in NO_STOCK_TYPES
    return Product(
        sku=item.sku, name=item.name, type=item.type, enabled=item.enabled, price=item.price, weight=item.weight,
        manage_stock=manage, url_key=item.url_key, image_url=item.image_url,
        custom_attributes=item.custom_attributes, children_skus=list(item.children_skus),
        created_at=now, updated_at=now,
    )


def upsert_products(
    items: Sequence[ProductIn],
    *,
    run_hooks: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Create or update products by sku, set-based, in batches of 1,000, in one transaction.

    Children must exist already or be part of ``items``. Raises :class:`FieldError` with
    locations ``(index, field)``; nothing is saved then. ``hooks.products_saved`` runs once per
    batch inside the transaction (``run_hooks=False`` skips it: bulk sample data). Idempotent:
    the same items again update the same rows. ``on_batch(n)`` reports progress.
    """
    _validate_products(items)
    result = UpsertResult()
    with transaction.atomic():
        for batch in chunks(items):
            now = timezone.now()
            skus = [i.sku for i in batch]
            existing = set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))
            objs = [_product(i, now) for i in batch]
            Product.objects.bulk_create(
                objs, update_conflicts=True, unique_fields=["sku"], update_fields=PRODUCT_UPDATE_FIELDS,
            )
            if any(o.pk is None for o in objs):  # pragma: no cover - databases without RETURNING
                ids = dict(Product.objects.filter(sku__in=skus).values_list("sku", "id"))
                for o in objs:
                    o.pk = ids[o.sku]
            result.updated += len(existing)
            result.created += len(objs) - len(existing)
            if len(result.skus) < 100:
                result.skus.extend(skus[: 100 - len(result.skus)])
            if run_hooks:
                for hook in list(hooks.products_saved):
                    hook(objs)
            if on_batch:
                on_batch(len(objs))
    return result


def save_product(product: Product) -> Product:
    """Save one product edited in place (the admin) and run ``hooks.products_saved`` in the same
    transaction, so the catalog module queues its sync like for REST and bulk upserts."""
    with transaction.atomic():
        product.updated_at = timezone.now()
        product.save()
        for hook in list(hooks.products_saved):
            hook([product])
    return product


# ------------------------------------------------------------------------------------- stock


def _status_value(item: StockItem, product: Product) -> bool:
    return bool(item.is_in_stock or item.unlimited or not product.manage_stock)


def set_stock(product: Product, aggregate: StockAggregate, qty: Decimal | int, *, source: str = "local") -> StockItem:
    """Set the quantity of ``product`` in ``aggregate`` and reindex that stock-status row.

    ``source="local"`` (admin, REST): every ``hooks.stock_edit_guard`` runs first and may raise
    :class:`hooks.ChangeRefused` (stock belongs to the OMS in production mode). Raises
    :class:`FieldError` for a negative quantity. Idempotent.
    """
    qty = Decimal(qty)
    if qty < 0:
        raise FieldError([(("qty",), "must be zero or more")])
    if not fits(qty):
        raise FieldError([(("qty",), too_large(qty))])
    if source == "local" and product.manage_stock and whole_units(product, qty):
        raise FieldError([(("qty",), whole_units(product, qty))])
    if source == "local":
        for guard in list(hooks.stock_edit_guard):
            guard(product)
    with transaction.atomic():
        item, _ = StockItem.objects.update_or_create(
            product=product, aggregate=aggregate,
            defaults={"qty": qty, "is_in_stock": qty > 0, "updated_at": timezone.now()},
        )
        StockStatus.objects.update_or_create(
            product=product, aggregate=aggregate,
            defaults={"qty": qty, "stock_status": _status_value(item, product)},
        )
    return item


_REINDEX_SQL = (
    "INSERT INTO {status} (product_id, aggregate_id, qty, stock_status) "
    "SELECT si.product_id, si.aggregate_id, si.qty, (si.is_in_stock OR si.unlimited OR NOT p.manage_stock) "
    "FROM {item} si JOIN {product} p ON p.id = si.product_id"
)


def reindex_stock(product_ids: Iterable[int] | None = None) -> int:
    """Rebuild ``cataloginventory_stock_status`` from ``cataloginventory_stock_item`` (set-based).

    All products, or only ``product_ids``. A row is in stock when the item is in stock, unlimited,
    or the product does not manage stock. Returns the number of index rows written. Idempotent.
    """
    tables = {
        "status": connection.ops.quote_name(StockStatus._meta.db_table),
        "item": connection.ops.quote_name(StockItem._meta.db_table),
        "product": connection.ops.quote_name(Product._meta.db_table),
    }
    insert = _REINDEX_SQL.format(**tables)
    written = 0
    with transaction.atomic(), connection.cursor() as cur:
        if product_ids is None:
            cur.execute(f"DELETE FROM {tables['status']}")  # noqa: S608 - table names, no input
            cur.execute(insert)
            return max(int(cur.rowcount), 0)
        ids = sorted(set(product_ids))
        for batch in chunks(ids, 500):
            marks = ", ".join(["%s"] * len(batch))
            cur.execute(f"DELETE FROM {tables['status']} WHERE product_id IN ({marks})", list(batch))  # noqa: S608
            cur.execute(f"{insert} WHERE si.product_id IN ({marks})", list(batch))
            written += max(cur.rowcount, 0)
    return written
