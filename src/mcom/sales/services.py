"""Sales use cases: export orders to the OMS, and apply what the OMS tells about them.

Export rules (design.md §6, the seed guide):

- An order is exported when its payment is authorized, its status is in
  ``mcom/orders/export_statuses`` of its store (default ``pending``) and its store has a
  ``mcom/general/sales_channel_id``. An order in another status waits (``not_exported``) and is sent
  by cron once its status changes into the list.
- A store without sales channel id: its eligible orders become ``skipped`` with the reason in
  ``oms_export_error``; they are re-evaluated on every cron run and sent once the id is configured.
- Export = map (plugins included) + ``outbox.enqueue(ORDER_CREATE)`` + ``oms_export_state=queued``,
  in one transaction; the worker sends after commit (or at once, :func:`send_now`, in synchronous
  mode and for ``oms:orders:sync``). The outbound hooks then set ``exported`` or ``failed``.
- A failed export (mapping/plugin error, or a send the worker gave up on) is ``failed`` with the
  error and ``oms_next_attempt_at``; cron retries it with backoff for as long as the status stays in
  the list. While the worker still retries a send, the order stays ``queued`` with the last error.
- Never twice: an order is only queued from ``not_exported``/``failed``/``skipped`` and only when no
  create message for it is waiting or sent (``entity_key order:<increment id>``); the OMS ignores
  duplicates as well.
- After export (and while queued) local status changes are refused (:func:`guard_status_change`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from mcom import envconfig
from mcom.commerce import config
from mcom.commerce.hooks import ChangeRefused
from mcom.commerce.models import (
    Order,
    OrderAddress,
    OrderItem,
    OrderStatusHistory,
    Product,
    Shipment,
    ShipmentItem,
    ShipmentTrack,
    Store,
)
from mcom.sales import mappers, plugins
from mcom.sales.mappers import SERVICE_TYPES, MappingError
from mcom.sales.messages import (
    OrderUpdate,
    ShipmentDone,
    ShipmentRequest,
    ShippingDetailsRequest,
)
from mcom.sales.plugins import PluginError
from mcom.service_bus import methods, outbox
from mcom.service_bus.errors import InvalidPayload, PermanentError, RetryLater
from mcom.service_bus.models import LoggedMessage

log = logging.getLogger("mcom.sales")

T = TypeVar("T")

SALES_CHANNEL_PATH = "mcom/general/sales_channel_id"
EXPORT_STATUSES_PATH = "mcom/orders/export_statuses"
SYNC_PATH = "mcom/transport/process_order_synchronously"

EXPORTABLE = (Order.EXPORT_NOT_EXPORTED, Order.EXPORT_FAILED, Order.EXPORT_SKIPPED)
BATCH_SIZE = 200
CRON_LIMIT = 1_000
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3_600.0
ZERO = Decimal("0")


def entity_key(increment_id: str) -> str:
    """The message-log key of everything about one order (outbound create, inbound updates)."""
    return f"order:{increment_id}"


def retry_delay(attempts: int) -> timedelta:
    """Backoff before cron retries a failed export: 30 s, 60 s, 120 s … capped at one hour."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _module_enabled() -> bool:
    return envconfig.current().module_enabled("sales")


# =============================================================================== export rules


@dataclass(frozen=True)
class StoreRules:
    store_id: int
    code: str
    sales_channel_id: str
    statuses: tuple[str, ...]
    synchronous: bool

    @property
    def no_channel_reason(self) -> str:
        return f"store {self.code} has no sales channel id ({SALES_CHANNEL_PATH}); not exported"


def store_rules() -> dict[int, StoreRules]:
    """The export rules of every store (per-store configuration, else default, else declared default)."""
    out = {}
    for store in Store.objects.all():
        out[store.pk] = StoreRules(
            store_id=store.pk,
            code=store.code,
            sales_channel_id=str(config.get(SALES_CHANNEL_PATH, store) or "").strip(),
            statuses=tuple(config.get(EXPORT_STATUSES_PATH, store) or ()),
            synchronous=bool(config.get(SYNC_PATH, store)),
        )
    return out


def _in_rules(rules: Mapping[int, StoreRules], *, with_channel: bool) -> Q | None:
    q: Q | None = None
    for r in rules.values():
        if bool(r.sales_channel_id) != with_channel or not r.statuses:
            continue
        part = Q(store_id=r.store_id, status__in=r.statuses)
        q = part if q is None else q | part
    return q


def eligible_orders(rules: Mapping[int, StoreRules], *, due_only: bool = True) -> QuerySet[Order]:
    """Orders that may be queued now: authorized, status in their store's list, store with a channel."""
    q = _in_rules(rules, with_channel=True)
    if q is None:
        return Order.objects.none()
    qs = Order.objects.filter(q, payment_authorized=True, oms_export_state__in=EXPORTABLE)
    if due_only:
        qs = qs.filter(Q(oms_next_attempt_at__isnull=True) | Q(oms_next_attempt_at__lte=timezone.now()))
    return qs


def mark_unexportable(rules: Mapping[int, StoreRules], order_ids: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """Mark eligible orders of stores without sales channel id ``skipped`` with the reason.

    Returns ``(increment_id, reason)`` of the orders concerned (already skipped ones included, at most
    100). Idempotent.
    """
    out: list[tuple[str, str]] = []
    for r in rules.values():
        if r.sales_channel_id or not r.statuses:
            continue
        qs = Order.objects.filter(store_id=r.store_id, status__in=r.statuses, payment_authorized=True,
                                  oms_export_state__in=EXPORTABLE)
        if order_ids is not None:
            qs = qs.filter(pk__in=order_ids)
        qs.exclude(oms_export_state=Order.EXPORT_SKIPPED, oms_export_error=r.no_channel_reason).update(
            oms_export_state=Order.EXPORT_SKIPPED, oms_export_error=r.no_channel_reason, oms_next_attempt_at=None,
        )
        if len(out) < 100:
            out += [(inc, r.no_channel_reason) for inc in qs.values_list("increment_id", flat=True)[: 100 - len(out)]]
    return out


# =============================================================================== queueing


@dataclass
class QueueResult:
    """What one export pass did. ``queued``: (increment id, message-log id)."""

    queued: list[tuple[str, int]] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {"queued": len(self.queued), "already": len(self.already), "failed": len(self.failed),
                "skipped": len(self.skipped)}


class _Raced(Exception):
    """Another process changed the export state of an order of this batch; the batch is rolled back."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    order: Order
    items: list[OrderItem]
    addresses: list[OrderAddress]


def _load_batch(ids: Sequence[int]) -> list[_Loaded]:
    """The exportable orders of ``ids`` (locked where supported) with their items and addresses.

    Four plain queries (orders, items, addresses, products) grouped in Python; the store and the
    product of every order/item are shared instances from one lookup each. Cheaper than
    ``select_related`` + ``prefetch_related``, which build a model per joined row and a queryset per
    order and relation.
    """
    qs = Order.objects.filter(pk__in=ids, oms_export_state__in=EXPORTABLE).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    orders = list(qs)
    if not orders:
        return []
    order_ids = [o.pk for o in orders]
    items: dict[int, list[OrderItem]] = defaultdict(list)
    for item in OrderItem.objects.filter(order_id__in=order_ids).order_by("id"):
        items[item.order_id].append(item)
    addresses: dict[int, list[OrderAddress]] = defaultdict(list)
    for address in OrderAddress.objects.filter(order_id__in=order_ids).order_by("id"):
        addresses[address.order_id].append(address)
    product_ids = {i.product_id for rows in items.values() for i in rows if i.product_id is not None}
    products = Product.objects.in_bulk(product_ids) if product_ids else {}
    stores = Store.objects.in_bulk({o.store_id for o in orders})
    for rows in items.values():
        for item in rows:
            if item.product_id is not None:
                item.product = products[item.product_id]
    for order in orders:
        order.store = stores[order.store_id]
    return [_Loaded(o, items.get(o.pk, []), addresses.get(o.pk, [])) for o in orders]


def _fail(order: Order, reason: str, now: datetime) -> None:
    attempts = order.oms_export_attempts + 1
    Order.objects.filter(pk=order.pk).update(
        oms_export_state=Order.EXPORT_FAILED, oms_export_attempts=attempts, oms_export_error=reason[:2000],
        oms_next_attempt_at=now + retry_delay(attempts),
    )


def _queue_batch(ids: Sequence[int], rules: Mapping[int, StoreRules], pset: plugins.PluginSet,
                 result: QueueResult) -> None:
    now = timezone.now()
    with transaction.atomic():
        loaded = {entity_key(b.order.increment_id): b for b in _load_batch(ids)}
        keys = {key: b.order for key, b in loaded.items()}
        known: dict[str, set[str]] = defaultdict(set)
        for key, status in LoggedMessage.objects.filter(
            direction=LoggedMessage.OUT, topic=methods.ORDER_CREATE, entity_key__in=list(keys),
            status__in=[*LoggedMessage.PENDING, LoggedMessage.COMPLETE],
        ).values_list("entity_key", "status"):
            known[key].add(status)
        # A create the worker gave up on (``error``) would hold back a new one of the same entity:
        # the new message supersedes it.
        LoggedMessage.objects.filter(
            direction=LoggedMessage.OUT, topic=methods.ORDER_CREATE, entity_key__in=list(keys),
            status=LoggedMessage.ERROR,
        ).update(status=LoggedMessage.IGNORED, updated_at=now)
        queued: list[int] = []
        to_send: list[tuple[Order, outbox.OutboxItem]] = []
        batch_result = QueueResult()
        for key, order in keys.items():
            if LoggedMessage.COMPLETE in known[key]:
                Order.objects.filter(pk=order.pk).update(
                    oms_export_state=Order.EXPORT_EXPORTED, oms_export_error="", oms_next_attempt_at=None,
                    oms_exported_at=order.oms_exported_at or now)
                batch_result.already.append(order.increment_id)
                continue
            if known[key]:
                queued.append(order.pk)
                batch_result.already.append(order.increment_id)
                continue
            try:
                spec = mappers.order_to_specification(
                    order, items=loaded[key].items, addresses=loaded[key].addresses,
                    sales_channel_id=rules[order.store_id].sales_channel_id, plugins=pset,
                )
            except (MappingError, PluginError) as e:
                log.warning("order %s not exported: %s", order.increment_id, e)
                _fail(order, str(e), now)
                batch_result.failed.append((order.increment_id, str(e)))
                continue
            to_send.append((order, outbox.OutboxItem(spec.to_params(), entity_key=key)))
        if to_send:
            log_ids = outbox.enqueue_many(methods.ORDER_CREATE, [item for _, item in to_send])
            for (order, _), log_id in zip(to_send, log_ids, strict=True):
                queued.append(order.pk)
                batch_result.queued.append((order.increment_id, log_id))
        if queued:
            changed = Order.objects.filter(pk__in=queued, oms_export_state__in=EXPORTABLE).update(
                oms_export_state=Order.EXPORT_QUEUED, oms_export_error="", oms_next_attempt_at=None,
            )
            if changed != len(queued):
                raise _Raced
    result.queued += batch_result.queued
    result.already += batch_result.already
    result.failed += batch_result.failed


def queue_orders(*, limit: int | None = None, order_ids: Sequence[int] | None = None,
                 due_only: bool = True) -> QueueResult:
    """One export pass: mark stores without channel, then map + enqueue the eligible orders (oldest first).

    ``limit`` caps the number of orders considered; ``order_ids`` restricts to those orders;
    ``due_only=False`` ignores the retry schedule. Mapping/plugin failures mark the order ``failed``
    (never raise). A batch that races with another exporter is rolled back and left for the next pass.
    Idempotent: an order is never queued twice.
    """
    result = QueueResult()
    if not _module_enabled():
        return result
    rules = store_rules()
    result.skipped = mark_unexportable(rules, order_ids)
    qs = eligible_orders(rules, due_only=due_only)
    if order_ids is not None:
        qs = qs.filter(pk__in=order_ids)
    ids = list(qs.order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return result
    pset = plugins.current()
    for batch in _chunks(ids, BATCH_SIZE):
        try:
            _queue_batch(batch, rules, pset, result)
        except _Raced:
            log.info("order export batch raced with another exporter; left for the next pass")
    return result


def send_now(log_ids: Sequence[int]) -> None:
    """Send queued create messages at once (after commit); outcomes land on the orders via the hooks."""
    from mcom.service_bus import worker

    for log_id in log_ids:
        worker.send_now(log_id)


def on_order_placed(order: Order) -> None:
    """``commerce.hooks.order_placed``: in synchronous mode, export the order while it is placed.

    Runs after the placing transaction committed. Only an order that is eligible now is sent; any
    other waits for cron. A failed send leaves the order ``queued``/``failed`` for cron; it never
    fails the placement (send errors are recorded on the order by the outbound hooks).
    """
    if not _module_enabled() or not config.get(SYNC_PATH, order.store):
        return
    result = queue_orders(order_ids=[order.pk], due_only=False)
    log_ids = [log_id for _, log_id in result.queued]
    if log_ids:
        transaction.on_commit(lambda: send_now(log_ids))


# =============================================================================== outbound hooks


def _increment_id(params: Mapping[str, Any]) -> str | None:
    order = params.get("order")
    return str(order.get("id")) if isinstance(order, Mapping) and order.get("id") else None


def export_sent(params: Mapping[str, Any], result: Any) -> None:
    """Outbound hook: the OMS accepted the create (or already had the order) → ``exported`` and one
    history row. Idempotent (an exported order is left as it is)."""
    increment_id = _increment_id(params)
    if increment_id is None:
        return
    now = timezone.now()
    duplicate = isinstance(result, Mapping) and bool(result.get("duplicate"))
    # The worker runs this hook inside the transaction that marks the message complete.
    changed = Order.objects.filter(increment_id=increment_id).exclude(
        oms_export_state=Order.EXPORT_EXPORTED
    ).update(
        oms_export_state=Order.EXPORT_EXPORTED, oms_exported_at=now, oms_export_error="",
        oms_next_attempt_at=None, oms_export_attempts=F("oms_export_attempts") + 1,
    )
    if changed:
        comment = "Exported to the OMS" + (" (the OMS already had it)" if duplicate else "")
        _history_sql(increment_id, comment, OrderStatusHistory.SOURCE_LOCAL, now)


def export_sent_many(sent: Sequence[tuple[Mapping[str, Any], Any]]) -> None:
    """Set-based :func:`export_sent` for ``(params, result)`` pairs: the orders not exported yet become
    ``exported`` and get one history row each, in a few statements per 500 orders. Idempotent."""
    duplicate: dict[str, bool] = {}
    for params, result in sent:
        increment_id = _increment_id(params)
        if increment_id is not None and increment_id not in duplicate:
            duplicate[increment_id] = isinstance(result, Mapping) and bool(result.get("duplicate"))
    now = timezone.now()
    keys = list(duplicate)
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        # The worker runs this hook inside the transaction that marks the messages complete; the rows
        # are locked until the update (PostgreSQL; SQLite holds the write lock already).
        qs = Order.objects.filter(increment_id__in=part).exclude(oms_export_state=Order.EXPORT_EXPORTED)
        if connection.features.has_select_for_update:
            qs = qs.select_for_update()
        changed = dict(qs.values_list("id", "increment_id"))
        if not changed:
            continue
        Order.objects.filter(pk__in=list(changed)).update(
            oms_export_state=Order.EXPORT_EXPORTED, oms_exported_at=now, oms_export_error="",
            oms_next_attempt_at=None, oms_export_attempts=F("oms_export_attempts") + 1,
        )
        for dup in (False, True):
            ids = [pk for pk, inc in changed.items() if duplicate[inc] is dup]
            if ids:
                comment = "Exported to the OMS" + (" (the OMS already had it)" if dup else "")
                _history_sql_many(ids, comment, OrderStatusHistory.SOURCE_LOCAL, now)


def _history_sql_many(order_ids: Sequence[int], comment: str, source: str, now: datetime) -> None:
    """One status-history row per order of ``order_ids`` with its current status (one statement)."""
    history = connection.ops.quote_name(OrderStatusHistory._meta.db_table)
    orders = connection.ops.quote_name(Order._meta.db_table)
    marks = ", ".join(["%s"] * len(order_ids))
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {history} (order_id, status, comment, source, created_at) "  # noqa: S608 - table names
            f"SELECT id, status, %s, %s, %s FROM {orders} WHERE id IN ({marks}) ORDER BY id",
            [comment, source, connection.ops.adapt_datetimefield_value(now), *order_ids],
        )


def _history_sql(increment_id: str, comment: str, source: str, now: datetime) -> None:
    """One status-history row for the order ``increment_id`` with its current status (one statement)."""
    history = connection.ops.quote_name(OrderStatusHistory._meta.db_table)
    orders = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {history} (order_id, status, comment, source, created_at) "  # noqa: S608 - table names
            f"SELECT id, status, %s, %s, %s FROM {orders} WHERE increment_id = %s",
            [comment, source, connection.ops.adapt_datetimefield_value(now), increment_id],
        )


def export_failed(params: Mapping[str, Any], error: str, will_retry: bool) -> None:
    """Outbound hook: a send attempt failed. Retrying → stays ``queued`` with the error; given up →
    ``failed`` with backoff for cron. Never downgrades an exported order."""
    increment_id = _increment_id(params)
    if increment_id is None:
        return
    order = Order.objects.filter(increment_id=increment_id).exclude(oms_export_state=Order.EXPORT_EXPORTED).first()
    if order is None:
        return
    attempts = order.oms_export_attempts + 1
    if will_retry:
        Order.objects.filter(pk=order.pk).exclude(oms_export_state=Order.EXPORT_EXPORTED).update(
            oms_export_attempts=attempts, oms_export_error=f"send failed, retrying: {error}"[:2000])
        return
    Order.objects.filter(pk=order.pk).exclude(oms_export_state=Order.EXPORT_EXPORTED).update(
        oms_export_state=Order.EXPORT_FAILED, oms_export_attempts=attempts, oms_export_error=error[:2000],
        oms_next_attempt_at=timezone.now() + retry_delay(attempts),
    )


# =============================================================================== oms:orders:sync


@dataclass
class SyncReport:
    sent: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def sync_orders(
    *,
    limit: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[str, bool], None] | None = None,
) -> SyncReport:
    """Send the orders that were not exported — failed, never sent or still waiting in the queue —
    now, oldest first, all or ``limit`` of them (``oms:orders:sync``).

    Ignores the retry schedule. Orders of stores without sales channel id are reported in
    ``skipped`` and do not count toward ``limit``. Each order ends ``exported`` (sent) or with its
    error (failed). Idempotent: an exported order is never sent again.
    """
    report = SyncReport()
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    rules = store_rules()
    report.skipped = mark_unexportable(rules)
    eligible = list(eligible_orders(rules, due_only=False).order_by("id").values_list("id", flat=True)[:limit])
    room = None if limit is None else limit - len(eligible)
    waiting: list[int] = []
    if room is None or room > 0:
        waiting = list(Order.objects.filter(oms_export_state=Order.EXPORT_QUEUED).order_by("id")
                       .values_list("id", flat=True)[:room])
    if on_total:
        on_total(len(eligible) + len(waiting))
    work: list[tuple[str, int | None]] = []
    result = queue_orders(order_ids=eligible, due_only=False) if eligible else QueueResult()
    for increment_id, reason in result.failed:
        report.failed.append((increment_id, reason))
        if on_progress:
            on_progress(increment_id, False)
    work += result.queued
    already = result.already + list(
        Order.objects.filter(pk__in=waiting).values_list("increment_id", flat=True))
    pending = dict(
        LoggedMessage.objects.filter(
            direction=LoggedMessage.OUT, topic=methods.ORDER_CREATE,
            entity_key__in=[entity_key(i) for i in already], status__in=LoggedMessage.PENDING,
        ).order_by("id").values_list("entity_key", "id")
    )
    work += [(inc, pending.get(entity_key(inc))) for inc in dict.fromkeys(already)]
    for increment_id, log_id in work:
        if log_id is not None:
            send_now([log_id])
        order = Order.objects.filter(increment_id=increment_id).values_list("oms_export_state", "oms_export_error").first()
        ok = order is not None and order[0] == Order.EXPORT_EXPORTED
        if ok:
            report.sent.append(increment_id)
        else:
            reason = (order[1] if order else "") or "not sent (message still waiting in the queue)"
            report.failed.append((increment_id, reason))
        if on_progress:
            on_progress(increment_id, ok)
    return report


# =============================================================================== read-only after export


def guard_status_change(order: Order, status: str) -> None:
    """``commerce.hooks.order_status_guard``: refuse local status changes of exported (or queued) orders.

    Raises :class:`ChangeRefused` with a message naming the order.
    """
    if not _module_enabled():
        return
    if order.oms_export_state == Order.EXPORT_EXPORTED:
        raise ChangeRefused(f"Order {order.increment_id} was exported to the OMS; its status is managed by the OMS")
    if order.oms_export_state == Order.EXPORT_QUEUED:
        raise ChangeRefused(
            f"Order {order.increment_id} is being exported to the OMS; its status is managed by the OMS")


# =============================================================================== inbound


def _locked_order(increment_id: str) -> Order:
    order = Order.objects.select_for_update().filter(increment_id=increment_id).first()
    if order is None:
        raise RetryLater(f"order {increment_id} is not known (yet)")
    return order


def _items(order: Order) -> list[OrderItem]:
    return list(OrderItem.objects.filter(order=order).select_related("product").order_by("id"))


def _index(order: Order, items: Sequence[OrderItem]) -> mappers.LineIndex:
    try:
        return mappers.line_index(items)
    except MappingError as e:
        raise PermanentError(f"order {order.increment_id}: {e}") from None


def _history(order: Order, comment: str, *, once: bool = False) -> None:
    if once and OrderStatusHistory.objects.filter(order=order, comment=comment).exists():
        return
    OrderStatusHistory.objects.create(order=order, status=order.status, comment=comment,
                                      source=OrderStatusHistory.SOURCE_OMS)


def _mark_known_to_oms(order: Order, now: datetime) -> list[str]:
    """The OMS talks about the order, so it has it: mark it exported if it is not yet."""
    if order.oms_export_state == Order.EXPORT_EXPORTED:
        return []
    order.oms_export_state = Order.EXPORT_EXPORTED
    order.oms_exported_at = order.oms_exported_at or now
    order.oms_export_error = ""
    order.oms_next_attempt_at = None
    return ["oms_export_state", "oms_exported_at", "oms_export_error", "oms_next_attempt_at"]


def _cancelled_units(line: Any) -> Decimal:
    if line.quantity_cancelled is not None:
        return Decimal(line.quantity_cancelled)
    if mappers.normalize_code(line.status) == "CANCELLED":
        return Decimal(line.quantity) if line.quantity is not None else Decimal(1)
    return ZERO


def apply_order_update(update: OrderUpdate) -> dict[str, Any]:
    """``order_management.updated``: OMS status (verbatim in ``oms_status``) → state/status, line statuses,
    cancelled quantities, a history comment when the status changed.

    Raises RetryLater (order or line not known yet), PermanentError (order cannot be indexed). Idempotent:
    the same update again changes nothing and adds no comment. An unknown status code is kept verbatim and
    leaves the state unchanged.
    """
    now = timezone.now()
    with transaction.atomic():
        order = _locked_order(update.order_id)
        items = _items(order)
        index = _index(order, items)
        per_item: dict[int, list[Any]] = defaultdict(list)
        unknown = []
        for line in update.lines:
            if index.is_shipping(line.id):
                continue
            ref = index.resolve(line.id)
            if ref is None:
                unknown.append(line.id)
            else:
                per_item[ref.item_id].append(line)
        if unknown:
            raise RetryLater(f"order {update.order_id}: unknown line(s) {', '.join(unknown[:5])}")
        changed_items = 0
        for item in items:
            lines = per_item.get(item.pk)
            if not lines:
                continue
            status = mappers.summarize_statuses([ln.status for ln in lines])
            reason = mappers.summarize_statuses([ln.status_reason for ln in lines])
            cancelled = min(sum((_cancelled_units(ln) for ln in lines), ZERO), Decimal(item.qty_ordered))
            if (item.oms_status, item.oms_status_reason, Decimal(item.qty_canceled)) != (status, reason, cancelled):
                item.oms_status, item.oms_status_reason, item.qty_canceled = status, reason, cancelled
                item.save(update_fields=["oms_status", "oms_status_reason", "qty_canceled"])
                changed_items += 1
        fields = _mark_known_to_oms(order, now)
        change = mappers.map_order_status(update.status, update.status_reason) if update.status else None
        status_changed = bool(update.status) and (order.oms_status, order.oms_status_reason) != (
            update.status[:64], update.status_reason[:64])
        if status_changed:
            order.oms_status, order.oms_status_reason = update.status[:64], update.status_reason[:64]
            fields += ["oms_status", "oms_status_reason"]
        if change is not None and (order.state, order.status) != (change.state, change.status):
            order.state, order.status = change.state, change.status
            fields += ["state", "status"]
        if fields:
            order.updated_at = now
            order.save(update_fields=[*fields, "updated_at"])
        if status_changed:
            label = update.status + (f" ({update.status_reason})" if update.status_reason else "")
            note = "" if change is not None else " — unknown status code, order state kept"
            _history(order, f"OMS status {label}{note}")
    return {"order": order.increment_id, "oms_status": order.oms_status, "state": order.state,
            "status": order.status, "lines_changed": changed_items}


def record_order_created(update: OrderUpdate) -> dict[str, Any]:
    """``order_management.created``: the OMS acknowledged the order → exported + one history comment.

    Raises RetryLater (order not known yet). Idempotent.
    """
    with transaction.atomic():
        order = _locked_order(update.order_id)
        fields = _mark_known_to_oms(order, timezone.now())
        if fields:
            order.save(update_fields=fields)
        _history(order, "The OMS acknowledged the order (order_management.created)", once=True)
    return {"order": order.increment_id, "acknowledged": True}


def shipment_dedupe_key(shipment: ShipmentDone, params: Mapping[str, Any]) -> str:
    """Identity of a shipment message: ``<order>:<shipment id>``, else a digest of the params."""
    if shipment.shipment_id:
        return f"{shipment.order_id}:{shipment.shipment_id}"[:255]
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"{shipment.order_id}:sha256:{digest}"[:255]


def parse_datetime(value: str) -> datetime | None:
    """Lenient ISO 8601 / ``YYYY-MM-DD HH:MM:SS[±hh:mm]``; naive = UTC (§12 #17); None when unreadable."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _sync_composites(items: Sequence[OrderItem]) -> list[OrderItem]:
    """Bundle parents follow their children's shipped fraction; configurable children follow the parent."""
    by_id = {i.pk: i for i in items}
    kids: dict[int, list[OrderItem]] = defaultdict(list)
    for i in items:
        if i.parent_id is not None:
            kids[i.parent_id].append(i)
    changed = []
    for parent_id, children in kids.items():
        parent = by_id.get(parent_id)
        if parent is None or not Decimal(parent.qty_ordered):
            continue
        if parent.product_type == Product.TYPE_CONFIGURABLE:
            for kid in children:
                if kid.qty_shipped != parent.qty_shipped:
                    kid.qty_shipped = parent.qty_shipped
                    changed.append(kid)
            continue
        fractions = [Decimal(k.qty_shipped) / Decimal(k.qty_ordered) for k in children if Decimal(k.qty_ordered)]
        shipped = (min(fractions) * Decimal(parent.qty_ordered)).to_integral_value(rounding="ROUND_FLOOR") \
            if fractions else ZERO
        if Decimal(parent.qty_shipped) != shipped:
            parent.qty_shipped = shipped
            changed.append(parent)
    return changed


def record_shipment(shipment: ShipmentDone, params: Mapping[str, Any]) -> dict[str, Any]:
    """``customer_shipment_done``: a commerce shipment with items and tracking; the order follows
    (complete when every shippable item is shipped or cancelled, else processing).

    Partial shipments add up. Idempotent on the shipment's identity (:func:`shipment_dedupe_key`,
    ``Shipment.dedupe_key`` unique): a repeat returns ``duplicate``. Raises RetryLater (order or line
    not known yet), InvalidPayload (ships no goods line).
    """
    key = shipment_dedupe_key(shipment, params)
    with transaction.atomic():
        order = _locked_order(shipment.order_id)
        existing = Shipment.objects.filter(dedupe_key=key).first()
        if existing is not None:
            return {"order": order.increment_id, "shipment": existing.pk, "duplicate": True}
        items = _items(order)
        index = _index(order, items)
        quantities = mappers.shipped_quantities(shipment, index)
        if quantities.unknown:
            raise RetryLater(f"order {order.increment_id}: unknown line(s) {', '.join(quantities.unknown[:5])}")
        if not quantities.by_item:
            raise InvalidPayload(f"shipment of order {order.increment_id} ships no goods line")
        now = timezone.now()
        record = Shipment.objects.create(
            order=order, oms_shipment_id=shipment.shipment_id[:128], dedupe_key=key,
            source_id=shipment.source_id[:64], method=shipment.method[:64],
            shipped_at=parse_datetime(shipment.shipment_date) or now, created_at=now,
        )
        by_id = {i.pk: i for i in items}
        clipped = []
        rows = []
        for item_id, qty in quantities.by_item.items():
            item = by_id[item_id]
            room = max(Decimal(item.qty_ordered) - Decimal(item.qty_shipped) - Decimal(item.qty_canceled), ZERO)
            if qty > room:
                clipped.append(item.sku)
                qty = room
            if qty <= 0:
                continue
            rows.append(ShipmentItem(shipment=record, order_item=item, qty=qty))
            item.qty_shipped = Decimal(item.qty_shipped) + qty
            item.save(update_fields=["qty_shipped"])
        ShipmentItem.objects.bulk_create(rows)
        for kid in _sync_composites(items):
            kid.save(update_fields=["qty_shipped"])
        tracks = [
            ShipmentTrack(shipment=record, carrier=p.carrier[:64], tracking_number=p.tracking_number[:128],
                          tracking_url=p.tracking_link[:512], comment=p.tracking_comment)
            for p in shipment.packages if p.carrier or p.tracking_number
        ]
        ShipmentTrack.objects.bulk_create(tracks)
        shippable = {p.item.pk for p in mappers.plan_lines(items) if p.item.product_type not in SERVICE_TYPES}
        done = all(
            Decimal(by_id[i].qty_shipped) + Decimal(by_id[i].qty_canceled) >= Decimal(by_id[i].qty_ordered)
            for i in shippable
        )
        fields = _mark_known_to_oms(order, now)
        if order.state not in (Order.STATE_CANCELED, Order.STATE_CLOSED):
            state = Order.STATE_COMPLETE if done else Order.STATE_PROCESSING
            if (order.state, order.status) != (state, mappers.STATE_STATUS[state]):
                order.state, order.status = state, mappers.STATE_STATUS[state]
                fields += ["state", "status"]
        if fields:
            order.updated_at = now
            order.save(update_fields=[*fields, "updated_at"])
        shipped = ", ".join(f"{r.qty.normalize():f} × {r.order_item.sku}" for r in rows)
        tracking = "; ".join(f"{t.carrier} {t.tracking_number}".strip() for t in tracks)
        comment = f"Shipped {shipped}" + (f" from {shipment.source_id}" if shipment.source_id else "")
        comment += f" — tracking {tracking}" if tracking else ""
        comment += f" (more than ordered for {', '.join(clipped)}: clipped)" if clipped else ""
        _history(order, comment)
    return {"order": order.increment_id, "shipment": record.pk, "items": len(rows), "complete": done,
            "duplicate": False}


TRACKING_LINKS: dict[str, str] = {
    "DHL": "https://www.dhl.com/global-en/home/tracking.html?tracking-id={}",
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FEDEX": "https://www.fedex.com/fedextrack/?trknbr={}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
}


def answer_shipping_details(request: ShippingDetailsRequest) -> list[dict[str, Any]]:
    """Carrier role (§8.10): the packages with ``carrier``, ``tracking_number`` and ``tracking_link`` filled.

    Tracking numbers are derived from order, source and package id, so asking again gives the same
    answer (idempotent). Records one history comment per answered request. Raises RetryLater (order not
    known yet).
    """
    with transaction.atomic():
        order = Order.objects.filter(increment_id=request.order_id).first()
        if order is None:
            raise RetryLater(f"order {request.order_id} is not known (yet)")
        answer = []
        for package in request.packages:
            carrier = package.carrier or (request.method.partition("-")[0] if "-" in request.method else "") or "MCOM"
            seed = f"{order.increment_id}:{request.source_id}:{package.id}"
            number = "MC" + hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:12].upper()
            link = TRACKING_LINKS.get(carrier.upper(), "").format(number)
            answer.append({
                **package.raw, "id": package.id, "carrier": carrier, "tracking_number": number,
                "tracking_link": link, "tracking_comment": f"label for order {order.increment_id}",
                "shipping_label_link": "", "items": list(package.items),
            })
        summary = "; ".join(f"package {p['id']} → {p['carrier']} {p['tracking_number']}" for p in answer)
        _history(order, f"Shipping details given to the OMS: {summary}", once=True)
    return answer


def record_shipment_request(request: ShipmentRequest) -> dict[str, Any]:
    """Warehouse role (§8.11): acknowledge a shipment request and record it as a history comment.

    The warehouse follow-ups (``lines_change_status``, ``lines_shipped``) are not specified by any
    source (§12 #22), so the request is recorded for people to act on. Raises RetryLater (order not
    known yet). Idempotent on ``request_id``.
    """
    with transaction.atomic():
        order = _locked_order(request.order_id)
        per_sku: dict[str, Decimal] = {}
        for it in request.items:
            key = it.sku or it.order_line_id
            per_sku[key] = per_sku.get(key, ZERO) + (it.quantity if it.quantity is not None else Decimal(1))
        lines = ", ".join(f"{qty.normalize():f} × {sku}" for sku, qty in per_sku.items()) or "no lines"
        source = f" from source {request.source_id}" if request.source_id else ""
        _history(order, f"Shipment request {request.request_id}{source}: {lines}", once=True)
    return {"order": order.increment_id, "request_id": request.request_id, "acknowledged": True}
