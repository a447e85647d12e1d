"""Order export: which orders go to the OMS, how they are queued, and what a send result does to them.

What the OMS tells about an order afterwards is applied by :mod:`mcom.sales.lifecycle`.

Export rules:

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

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from mcom import envconfig
from mcom.commerce import config
from mcom.commerce.models import (
    Order,
    OrderAddress,
    OrderItem,
    OrderStatusHistory,
    Product,
    Store,
)
from mcom.sales import mappers, messages, plugins
from mcom.sales.mappers import MappingError
from mcom.sales.plugins import PluginError
from mcom.service_bus import log as message_log
from mcom.service_bus import methods, outbox
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.retry import RetryPolicy

log = logging.getLogger("mcom.sales")

T = TypeVar("T")

SALES_CHANNEL_PATH = "mcom/general/sales_channel_id"
EXPORT_STATUSES_PATH = "mcom/orders/export_statuses"
SYNC_PATH = "mcom/transport/process_order_synchronously"

EXPORTABLE = (Order.EXPORT_NOT_EXPORTED, Order.EXPORT_FAILED, Order.EXPORT_SKIPPED)
BATCH_SIZE = 200
#: a pass reads the due order ids this many at a time (it goes on until no order is due)
PASS_CHUNK = 1_000
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3_600.0
ZERO = Decimal("0")


def entity_key(increment_id: str) -> str:
    """The message-log key of everything about one order (outbound create, inbound updates)."""
    return messages.order_key(increment_id)


#: cron retries a failed export for as long as the order stays exportable: 30 s, 60 s, 120 s … capped at one hour
EXPORT_RETRY = RetryPolicy(RETRY_BASE_SECONDS, RETRY_MAX_SECONDS)


def retry_delay(attempts: int) -> timedelta:
    """Backoff before cron retries a failed export (:data:`EXPORT_RETRY`)."""
    return EXPORT_RETRY.delay(attempts)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def module_enabled() -> bool:
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


def poison_reason(error: BaseException) -> str:
    """One line saying why an order cannot be read, mapped or queued (stored on the order)."""
    if isinstance(error, InvalidOperation):
        return ("order cannot be read back: a stored amount or quantity has more digits than its column holds "
                f"({type(error).__name__})")
    text = " ".join(str(error).split()) or "no detail"
    return f"order cannot be exported: {type(error).__name__}: {text}"[:2000]


def _fail_alone(order_id: int, reason: str) -> str:
    """Mark one order ``failed`` with ``reason`` without reading it back (its row may not be readable).

    Returns its increment id ("" when it is gone or no longer exportable).
    """
    row = Order.objects.filter(pk=order_id, oms_export_state__in=EXPORTABLE).values_list(
        "increment_id", "oms_export_attempts").first()
    if row is None:
        return ""
    increment_id, attempts = row
    Order.objects.filter(pk=order_id, oms_export_state__in=EXPORTABLE).update(
        oms_export_state=Order.EXPORT_FAILED, oms_export_attempts=attempts + 1, oms_export_error=reason[:2000],
        oms_next_attempt_at=timezone.now() + retry_delay(attempts + 1),
    )
    return str(increment_id)


def _queue_isolated(ids: Sequence[int], rules: Mapping[int, StoreRules], pset: plugins.PluginSet,
                    result: QueueResult) -> None:
    """Queue a batch; when it fails as a whole (an order cannot be read back, a value does not fit the
    message log…), queue its orders one by one so that only the poison order fails, with its reason."""
    try:
        _queue_batch(ids, rules, pset, result)
        return
    except _Raced:
        log.info("order export batch raced with another exporter; left for the next pass")
        return
    except Exception as e:  # noqa: BLE001 - find the poison order(s) one by one below
        if len(ids) == 1:
            reason = poison_reason(e)
            increment_id = _fail_alone(ids[0], reason)
            log.warning("order %s not exported: %s", increment_id or f"#{ids[0]}", reason)
            if increment_id:
                result.failed.append((increment_id, reason))
            return
        log.warning("order export batch of %d failed (%s); exporting its orders one by one", len(ids),
                    poison_reason(e))
    for order_id in ids:
        _queue_isolated([order_id], rules, pset, result)


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
        message_log.supersede(LoggedMessage.OUT, methods.ORDER_CREATE, list(keys))
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
            except Exception as e:  # noqa: BLE001 - a mapper/plugin bug on one order fails that order alone
                reason = poison_reason(e)
                log.warning("order %s not exported: %s", order.increment_id, reason)
                _fail(order, reason, now)
                batch_result.failed.append((order.increment_id, reason))
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
                 due_only: bool = True, stop: Callable[[], bool] | None = None) -> QueueResult:
    """One export pass: mark stores without channel, then map + enqueue the eligible orders (oldest first).

    The due orders are read :data:`PASS_CHUNK` ids at a time and queued in batches of
    :data:`BATCH_SIZE`, each committed on its own (the sender is woken by each commit), until no
    order is due any more, ``limit`` orders were considered, or ``stop()`` turns true (checked
    between batches). ``order_ids`` restricts to those orders; ``due_only=False`` ignores the
    retry schedule. An order that cannot be read back, mapped or
    queued is marked ``failed`` with its reason, alone; the rest of the pass proceeds (never raises). A batch that races with another exporter is rolled back and left for the next pass.
    Idempotent: an order is never queued twice.
    """
    result = QueueResult()
    if not module_enabled():
        return result
    rules = store_rules()
    result.skipped = mark_unexportable(rules, order_ids)
    qs = eligible_orders(rules, due_only=due_only)
    if order_ids is not None:
        qs = qs.filter(pk__in=order_ids)
    pset: plugins.PluginSet | None = None
    last_id, considered = 0, 0
    while limit is None or considered < limit:
        take = PASS_CHUNK if limit is None else min(PASS_CHUNK, limit - considered)
        ids = list(qs.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:take])
        if not ids:
            break
        last_id, considered = ids[-1], considered + len(ids)
        if pset is None:
            pset = plugins.current()
        for batch in _chunks(ids, BATCH_SIZE):
            if stop is not None and stop():
                return result
            _queue_isolated(batch, rules, pset, result)
    return result


def send_now(log_ids: Sequence[int]) -> None:
    """Send queued create messages at once (after commit); outcomes land on the orders via the hooks."""
    from mcom.service_bus import integration, worker

    if not integration.enabled():  # disabled integration: the messages wait in the queue
        return
    for log_id in log_ids:
        worker.send_now(log_id)


def on_order_placed(order: Order) -> None:
    """``commerce.hooks.order_placed``: in synchronous mode, export the order while it is placed.

    Runs after the placing transaction committed. Only an order that is eligible now is sent; any
    other waits for cron. A failed send leaves the order ``queued``/``failed`` for cron; it never
    fails the placement (send errors are recorded on the order by the outbound hooks).
    """
    if not module_enabled() or not config.get(SYNC_PATH, order.store):
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
    export_sent_many([(params, result)])


def export_sent_many(sent: Sequence[tuple[Mapping[str, Any], Any]]) -> None:
    """Set-based :func:`export_sent` for ``(params, result)`` pairs: the orders not exported yet become
    ``exported`` and get one history row each, in a few statements per 500 orders. Idempotent."""
    duplicate: dict[str, bool] = {}
    for params, result in sent:
        increment_id = _increment_id(params)
        if increment_id is not None and increment_id not in duplicate:
            duplicate[increment_id] = isinstance(result, Mapping) and bool(result.get("duplicate"))
    if not duplicate:
        return
    now = timezone.now()
    keys = list(duplicate)
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        # The worker runs this hook inside the transaction that marks the messages complete. One
        # UPDATE … RETURNING (SQLite ≥ 3.35, PostgreSQL) both locks and changes the rows; the ORM's
        # select + update + filter compiling cost more than the statements themselves (profiled:
        # most of the sender's recording time).
        changed = dict(_mark_exported_sql(part, now))
        for dup in (False, True):
            ids = [pk for pk, inc in changed.items() if duplicate[inc] is dup]
            if ids:
                comment = "Exported to the OMS" + (" (the OMS already had it)" if dup else "")
                _history_sql_many(ids, comment, OrderStatusHistory.SOURCE_LOCAL, now)


@functools.cache
def _mark_exported_template(vendor: str) -> str:
    """The ``UPDATE … RETURNING`` of :func:`_mark_exported_sql`, ``{marks}`` left for the ids (built
    once per database vendor: it runs for every recorded group of sends)."""
    meta = Order._meta
    q = connection.ops.quote_name
    col = {f.name: q(f.column or f.name) for f in meta.concrete_fields}
    return (
        f"UPDATE {q(meta.db_table)} SET {col['oms_export_state']} = %s, {col['oms_exported_at']} = %s, "  # noqa: S608
        f"{col['oms_export_error']} = '', {col['oms_next_attempt_at']} = NULL, "
        f"{col['oms_export_attempts']} = {col['oms_export_attempts']} + 1 "
        f"WHERE {col['increment_id']} IN ({{marks}}) AND {col['oms_export_state']} <> %s "
        f"RETURNING {col['id']}, {col['increment_id']}"
    )


def _mark_exported_sql(increment_ids: Sequence[str], now: datetime) -> list[tuple[int, str]]:
    """Orders of ``increment_ids`` not exported yet → ``exported`` (error cleared, attempt counted);
    returns their ``(id, increment_id)`` (one statement)."""
    sql = _mark_exported_template(connection.vendor).format(marks=", ".join(["%s"] * len(increment_ids)))
    with connection.cursor() as cur:
        cur.execute(sql, [Order.EXPORT_EXPORTED, connection.ops.adapt_datetimefield_value(now), *increment_ids,
                          Order.EXPORT_EXPORTED])
        return [(int(pk), str(inc)) for pk, inc in cur.fetchall()]


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
