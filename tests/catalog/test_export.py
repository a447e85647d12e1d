"""Full-catalog export tasks: run, progress, schedule for cron, cancel, one at a time, resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from mcom.catalog import export, services
from mcom.catalog.models import CatalogExportTask as Task
from mcom.commerce import services as commerce
from mcom.service_bus import cron
from mcom.service_bus.models import LoggedMessage

from .conftest import make_products, product_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db: None) -> None:
    commerce.upsert_products(make_products(1200), run_hooks=False)


def test_full_export_streams_every_product_in_pages_with_progress(catalog: None) -> None:
    seen: list[tuple[str, int, int]] = []
    task = services.run_export(progress=lambda t: seen.append((t.status, t.processed, t.total)),
                               sender=None, batch_size=500)
    assert (task.status, task.processed, task.total) == (Task.COMPLETE, 1201, 1201)  # + STANDARD shipping
    assert task.slot is None
    assert task.finished_at is not None
    assert seen[0] == ("running", 0, 1201)
    assert [p for _, p, _ in seen] == [0, 1, 501, 1001, 1201]
    skus = [m["product"]["sku"] for m in product_messages()]
    assert len(skus) == 1201
    assert "STANDARD" in skus
    assert services.current_task() == task


def test_export_uses_the_sender_and_counts_deliveries(catalog: None) -> None:
    calls: list[int] = []

    def sender(ids: list[int]) -> tuple[int, int]:
        calls.append(len(ids))
        LoggedMessage.objects.filter(pk__in=ids).update(status=LoggedMessage.COMPLETE)
        return len(ids), 0

    task = services.run_export(sender=sender, batch_size=500)
    assert calls == [1, 500, 500, 200]
    assert task.sent == 1201


def test_direct_sending_stops_when_nothing_gets_through(catalog: None) -> None:
    calls: list[int] = []

    def down(ids: list[int]) -> tuple[int, int]:
        calls.append(len(ids))
        return 0, len(ids)

    task = services.run_export(sender=down, batch_size=100)
    assert len(calls) == export.MAX_FAILED_PAGES
    assert task.status == Task.COMPLETE
    assert task.processed == 1201
    assert task.sent == 0
    assert LoggedMessage.objects.filter(status=LoggedMessage.NEW).count() == 1201  # left for the worker


def test_schedule_only_creates_a_pending_task_that_cron_runs(catalog: None, env: Any) -> None:
    task = services.schedule_export(requested_by="test")
    assert task.status == Task.PENDING
    assert services.current_task() == task
    env(modules=["catalog"])  # only the catalog jobs in this cron pass; the bus is not configured
    runs = cron.run_due(force=True, only="catalog.export")
    assert runs[0].ok, runs[0].error
    task.refresh_from_db()
    assert (task.status, task.processed) == (Task.COMPLETE, 1201)
    assert cron.run_due(force=True, only="catalog.export")[0].result == "no export pending"


def test_only_one_open_task(catalog: None) -> None:
    services.schedule_export()
    with pytest.raises(services.ExportBusy, match="already open"):
        services.schedule_export()


def test_a_second_run_while_one_is_running_gets_a_clear_message(catalog: None) -> None:
    def progress(task: Task) -> None:
        if task.processed == 501:
            with pytest.raises(services.ExportBusy, match="already running"):
                services.run_export(sender=None)

    assert services.run_export(progress=progress, sender=None, batch_size=500).status == Task.COMPLETE


def test_cancel_a_running_export_stops_between_pages_and_records_progress(catalog: None) -> None:
    def progress(task: Task) -> None:
        if task.processed == 501:
            requested = services.cancel_export()
            assert requested.status == Task.RUNNING
            assert requested.cancel_requested

    task = services.run_export(progress=progress, sender=None, batch_size=500)
    assert task.status == Task.CANCELLED
    assert task.processed == 1001  # the page in flight when cancel arrived is finished, then it stops
    assert "cancelled after 1001 of 1201" in task.error
    assert task.slot is None
    assert services.schedule_export().status == Task.PENDING  # the slot is free again


def test_cancel_a_pending_export(catalog: None) -> None:
    services.schedule_export()
    task = services.cancel_export()
    assert task.status == Task.CANCELLED
    assert task.processed == 0
    with pytest.raises(services.NothingToCancel):
        services.cancel_export()


def _interrupt_after_first_page(catalog: None) -> Task:
    class Killed(KeyboardInterrupt):
        pass

    def progress(task: Task) -> None:
        if task.processed == 501:
            raise Killed

    with pytest.raises(Killed):
        services.run_export(progress=progress, sender=None, batch_size=500)
    task = services.current_task()
    assert task is not None
    return task


def test_an_interrupted_export_is_detected_and_resumed(catalog: None) -> None:
    task = _interrupt_after_first_page(catalog)
    assert task.status == Task.RUNNING
    assert task.display_status == "interrupted"
    last = task.last_product_id
    before = LoggedMessage.objects.count()
    resumed = services.run_export(sender=None, batch_size=500)
    assert resumed.pk == task.pk
    assert (resumed.status, resumed.processed) == (Task.COMPLETE, 1201)
    assert LoggedMessage.objects.count() - before == 1201 - 501  # nothing before the cursor again
    assert resumed.last_product_id > last


def test_a_killed_process_is_interrupted_once_its_heartbeat_is_old(catalog: None) -> None:
    task = Task.objects.create(status=Task.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    assert task.display_status == "running"
    with pytest.raises(services.ExportBusy):
        services.run_export(sender=None)
    Task.objects.filter(pk=task.pk).update(heartbeat_at=timezone.now() - Task.STALE_AFTER - timedelta(seconds=5))
    task.refresh_from_db()
    assert task.display_status == "interrupted"


def test_restart_starts_an_interrupted_export_over(catalog: None) -> None:
    _interrupt_after_first_page(catalog)
    task = services.run_export(sender=None, restart=True, batch_size=500)
    assert (task.status, task.processed, task.total) == (Task.COMPLETE, 1201, 1201)


def test_cancel_an_interrupted_export(catalog: None) -> None:
    _interrupt_after_first_page(catalog)
    task = services.cancel_export()
    assert task.status == Task.CANCELLED
    assert "interruption at 501" in task.error


def test_a_failing_export_is_marked_failed(catalog: None) -> None:
    def boom(ids: list[int]) -> tuple[int, int]:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        services.run_export(sender=boom)
    task = services.current_task()
    assert task is not None
    assert task.status == Task.FAILED
    assert "disk on fire" in task.error


def test_memory_does_not_depend_on_catalog_size_pages_are_bounded(catalog: None, monkeypatch: Any) -> None:
    sizes: list[int] = []
    real = export.sync.queue_products

    def spy(products: Any, **kw: Any) -> list[int]:
        sizes.append(len(products))
        return real(products, **kw)

    monkeypatch.setattr(export.sync, "queue_products", spy)
    services.run_export(sender=None, batch_size=300)
    assert max(sizes) == 300
    assert sum(sizes) == 1200


def test_a_run_whose_task_was_taken_over_stops_without_touching_it(catalog: None) -> None:
    other = timezone.now() + timedelta(seconds=1)

    def progress(task: Task) -> None:
        if task.processed == 501:  # another process resumed it (it believed this one dead)
            Task.objects.filter(pk=task.pk).update(heartbeat_at=other)

    task = services.run_export(progress=progress, sender=None, batch_size=500)
    assert task.status == Task.RUNNING
    assert task.heartbeat_at == other
    assert task.processed == 501
