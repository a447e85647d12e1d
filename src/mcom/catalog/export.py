"""Full-catalog export tasks: schedule, run (resumable, cancellable), cancel, inspect.

Design decisions:

- **One open task at a time** is a database guarantee: an open (pending/running) task holds the
  unique ``slot = "open"``; creating a second one fails with :class:`ExportBusy`. Starting a
  pending task is an atomic conditional UPDATE (``status = pending → running``), so two
  processes never run the same task.
- **Streaming**: products are read in keyset pages (``id > last_product_id ORDER BY id``,
  :data:`BATCH_SIZE` rows), so memory does not grow with the catalog size.
- **Outbox, then send**: each page is written to the message log in one set-based
  ``outbox.enqueue_many`` (every outbound message is logged before it is sent), then the
  worker sends that page at once (:func:`mcom.service_bus.worker.send_messages`: claim in
  per-entity order, send, record set-based, the registered ``on_sent_many``/``on_failed``
  hooks), so progress reflects real deliveries. A message that fails stays in the log and the
  worker retries it. :data:`PAGE_RETRY` gives up early: after :data:`MAX_FAILED_PAGES` failures in
  a row a page stops (the rest waits), and after as many pages with no delivery the export stops
  sending directly and only queues (the OMS looks down; cron delivers later with backoff).
- **Heartbeat and resume**: every page updates ``processed``, ``last_product_id`` and
  ``heartbeat_at``. A running task whose heartbeat is older than ``STALE_AFTER`` was
  interrupted (the process died); :func:`run_export` takes it over (compare-and-set on the old
  heartbeat) and resumes after ``last_product_id``, or from the start with ``restart=True``.
- **Cancel** between pages: :func:`cancel_export` cancels a pending task at once and sets
  ``cancel_requested`` on a running one; the running export (any process) sees it before its
  next page, stops and records how far it got.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from mcom import envconfig
from mcom.catalog import sync
from mcom.catalog.models import CatalogExportTask as Task
from mcom.catalog.models import ShippingMethod
from mcom.commerce.models import Product
from mcom.service_bus import integration
from mcom.service_bus.retry import RetryPolicy

log = logging.getLogger("mcom.catalog.export")

BATCH_SIZE = 500
MAX_FAILED_PAGES = 3
#: direct sending gives up after this many failures in a row (messages in a page, pages in an export)
PAGE_RETRY = RetryPolicy(0.0, 0.0, max_attempts=MAX_FAILED_PAGES)
PRODUCT_FIELDS = ("id", "sku", "name", "type", "enabled", "custom_attributes", "children_skus",
                  "price", "weight", "url_key", "image_url", "manage_stock")

Progress = Callable[[Task], None]
Sender = Callable[[list[int]], tuple[int, int]]


class ExportError(Exception):
    """A catalog-export request that cannot be carried out; ``str()`` is one line."""


class ExportBusy(ExportError):
    """Another export is already pending or running."""


class NothingToCancel(ExportError):
    """No pending or running export."""


def open_task() -> Task | None:
    """The pending or running task, if any."""
    return Task.objects.filter(slot=Task.OPEN).first()


def current_task() -> Task | None:
    """The open (pending/running) task, else the most recent one, else None."""
    return open_task() or Task.objects.order_by("-id").first()


def _describe(task: Task) -> str:
    return f"task #{task.pk}, {task.display_status}, {task.processed}/{task.total}"


def schedule_export(*, requested_by: str = "cli") -> Task:
    """Create a pending task for cron (``catalog.export`` job) to run. Raises :class:`ExportBusy`."""
    try:
        with transaction.atomic():
            return Task.objects.create(status=Task.PENDING, slot=Task.OPEN, requested_by=requested_by)
    except IntegrityError:
        busy = open_task()
        raise ExportBusy(f"a catalog export is already open ({_describe(busy) if busy else 'just started'})") from None


def cancel_export() -> Task:
    """Cancel the open task: a pending or interrupted one at once, a running one at its next page.

    Returns the task (status ``cancelled``, or ``running`` with ``cancel_requested``). Raises
    :class:`NothingToCancel` when no export is pending or running.
    """
    task = open_task()
    if task is None:
        raise NothingToCancel("no pending or running catalog export to cancel")
    now = timezone.now()
    finish = {"status": Task.CANCELLED, "slot": None, "finished_at": now, "cancel_requested": True}
    if task.status == Task.PENDING:
        if Task.objects.filter(pk=task.pk, status=Task.PENDING).update(**finish, error="cancelled before it started"):
            task.refresh_from_db()
            return task
    elif task.is_interrupted(now):
        stopped = f"cancelled after interruption at {task.processed} of {task.total}"
        if Task.objects.filter(pk=task.pk, status=Task.RUNNING, heartbeat_at=task.heartbeat_at).update(
            **finish, error=stopped
        ):
            task.refresh_from_db()
            return task
    Task.objects.filter(pk=task.pk, status__in=[Task.PENDING, Task.RUNNING]).update(cancel_requested=True)
    task.refresh_from_db()
    return task


def _count_total(task: Task) -> int:
    products = Product.objects.filter(id__gt=task.last_product_id).count()
    shipping = 0
    if not task.shipping_done:
        sync.discover_shipping_methods()
        shipping = ShippingMethod.objects.filter(active=True).count()
    return task.processed + products + shipping


def _claim(task: Task | None, *, restart: bool, requested_by: str) -> Task:
    """Take ownership of ``task`` (or the open one, or a new one) atomically; return it running."""
    now = timezone.now()
    task = task or open_task()
    if task is None:
        try:
            with transaction.atomic():
                task = Task.objects.create(
                    status=Task.RUNNING, slot=Task.OPEN, started_at=now, heartbeat_at=now, requested_by=requested_by
                )
        except IntegrityError:
            task = open_task()
            if task is None:  # the other one finished in between
                raise ExportBusy("another catalog export just ran; try again") from None
        else:
            task.total = _count_total(task)
            task.save(update_fields=["total"])
            return task
    task.refresh_from_db()
    reset = {"processed": 0, "sent": 0, "last_product_id": 0, "shipping_done": False} if restart else {}
    if task.status == Task.PENDING:
        claimed = Task.objects.filter(pk=task.pk, status=Task.PENDING).update(
            status=Task.RUNNING, started_at=now, heartbeat_at=now, **reset
        )
    elif task.status == Task.RUNNING:
        if not task.is_interrupted(now):
            raise ExportBusy(f"a catalog export is already running ({_describe(task)}); use --cancel to stop it")
        claimed = Task.objects.filter(pk=task.pk, status=Task.RUNNING, heartbeat_at=task.heartbeat_at).update(
            heartbeat_at=now, cancel_requested=False, **reset
        )
        log.info("resuming interrupted catalog export #%s after product id %s", task.pk, task.last_product_id)
    else:
        raise ExportError(f"catalog export #{task.pk} is {task.status}; start a new one")
    if not claimed:
        raise ExportBusy(f"catalog export #{task.pk} was started by another process")
    task.refresh_from_db()
    task.total = _count_total(task)
    task.save(update_fields=["total"])
    return task


class _Lost(Exception):
    """Another process took the task over (our heartbeat was considered stale)."""


def _checkpoint(task: Task, **fields: object) -> bool:
    """Record progress + heartbeat (compare-and-set on our previous heartbeat); False when a cancel
    was requested. Raises :class:`_Lost` when another process has taken the task over."""
    previous = task.heartbeat_at
    task.heartbeat_at = timezone.now()
    for name, value in fields.items():
        setattr(task, name, value)
    task.total = max(task.total, task.processed)
    names = ["heartbeat_at", "total", *fields]
    updated = Task.objects.filter(pk=task.pk, status=Task.RUNNING, heartbeat_at=previous).update(
        **{n: getattr(task, n) for n in names}
    )
    if not updated:
        raise _Lost
    return not Task.objects.filter(pk=task.pk).values_list("cancel_requested", flat=True).first()


def _finish(task: Task, status: str, error: str = "") -> Task:
    now = timezone.now()
    Task.objects.filter(pk=task.pk).update(
        status=status, slot=None, finished_at=now, heartbeat_at=now, error=error,
        processed=task.processed, sent=task.sent, last_product_id=task.last_product_id, total=task.total,
    )
    task.refresh_from_db()
    return task


def default_sender(ids: list[int]) -> tuple[int, int]:
    """Send a logged page now through the worker (:func:`mcom.service_bus.worker.send_messages`);
    returns ``(sent, not sent)``. With ``[service_bus]`` incomplete nothing is sent: the rows wait
    for the worker."""
    from mcom.service_bus import worker
    from mcom.service_bus.models import LoggedMessage

    try:
        statuses = worker.send_messages(ids, give_up=PAGE_RETRY)
    except envconfig.ConfigError as e:
        log.info("catalog export: messages only queued: %s", e)
        return 0, len(ids)
    sent = sum(1 for status in statuses.values() if status == LoggedMessage.COMPLETE)
    return sent, len(ids) - sent


def worker_sender(ids: list[int]) -> tuple[int, int]:
    """Alternative sender: let the worker deliver due messages (at most ``len(ids)`` attempts)."""
    from mcom.service_bus import worker
    from mcom.service_bus.models import LoggedMessage

    if not ids:
        return 0, 0
    worker.send_outbound(limit=len(ids))
    sent = LoggedMessage.objects.filter(pk__in=ids, status=LoggedMessage.COMPLETE).count()
    return sent, len(ids) - sent


class _Delivery:
    """Sends pages directly until the OMS looks down, then leaves the rest to the worker."""

    def __init__(self, sender: Sender | None) -> None:
        self.sender = sender
        self.failed_pages = 0

    def __call__(self, ids: list[int]) -> int:
        if self.sender is None or not ids or PAGE_RETRY.exhausted(self.failed_pages):
            return 0
        if not integration.enabled():  # disabled integration: pages stay queued for after Enable
            return 0
        sent, _ = self.sender(ids)
        self.failed_pages = 0 if sent else self.failed_pages + 1
        if PAGE_RETRY.exhausted(self.failed_pages):
            log.warning("catalog export: nothing delivered for %d pages; the rest is only queued for the worker",
                        MAX_FAILED_PAGES)
        return sent


def _export_pages(task: Task, deliver: _Delivery, progress: Progress | None, batch_size: int) -> bool:
    """Export shipping methods, then products page by page. False when cancelled."""
    ctx = sync.mapping_context()
    if not task.shipping_done:
        ids = sync.queue_shipping_methods(ctx=ctx, discover=False)
        sent = deliver(ids)
        if not _checkpoint(task, processed=task.processed + len(ids), sent=task.sent + sent, shipping_done=True):
            return False
        if progress:
            progress(task)
    while True:
        page = list(
            Product.objects.filter(id__gt=task.last_product_id).order_by("id").only(*PRODUCT_FIELDS)[:batch_size]
        )
        if not page:
            return True
        ids = sync.queue_products(page, ctx=ctx)
        sent = deliver(ids)
        alive = _checkpoint(
            task, processed=task.processed + len(page), sent=task.sent + sent, last_product_id=page[-1].pk
        )
        del page
        if progress:
            progress(task)
        if not alive:
            return False


def run_export(
    task: Task | None = None,
    *,
    progress: Progress | None = None,
    restart: bool = False,
    batch_size: int = BATCH_SIZE,
    sender: Sender | None = default_sender,
    requested_by: str = "cli",
) -> Task:
    """Run ``task``, else the open (pending or interrupted) one, else a new one — now, in this process.

    Blocks until done; ``progress(task)`` is called after each page. Returns the finished task
    (``complete`` or ``cancelled``). Raises :class:`ExportBusy` when another process is running an
    export, :class:`ExportError` for a finished task. Any other error marks the task ``failed``
    (with the error) and is re-raised; an interrupt (Ctrl-C) leaves it resumable. ``sender=None``
    only queues the messages (the worker sends them).
    """
    task = _claim(task, restart=restart, requested_by=requested_by)
    if progress:
        progress(task)
    try:
        finished = _export_pages(task, _Delivery(sender), progress, batch_size)
    except _Lost:
        log.warning("catalog export #%s was taken over or closed by another process; this run stops", task.pk)
        task.refresh_from_db()
        return task
    except KeyboardInterrupt:
        stale = timezone.now() - Task.STALE_AFTER - timedelta(seconds=1)
        Task.objects.filter(pk=task.pk, status=Task.RUNNING).update(heartbeat_at=stale)
        raise
    except Exception as e:
        _finish(task, Task.FAILED, f"{type(e).__name__}: {e}"[:2000])
        raise
    if not finished:
        task.refresh_from_db()
        if task.status != Task.RUNNING:  # cancelled by cancel_export() after an interruption
            return task
        return _finish(task, Task.CANCELLED, f"cancelled after {task.processed} of {task.total}")
    task.total = task.processed  # exact once done (shipping methods sharing a SKU are sent once)
    return _finish(task, Task.COMPLETE)


def run_pending(*, sender: Sender | None = default_sender) -> Task | None:
    """Cron: run the pending task if there is one (a running or interrupted one is left alone)."""
    task = Task.objects.filter(slot=Task.OPEN, status=Task.PENDING).first()
    if task is None:
        return None
    try:
        return run_export(task, sender=sender, requested_by="cron")
    except ExportBusy:
        return None
