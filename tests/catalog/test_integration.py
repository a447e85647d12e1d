"""Catalog sync and full export against the sandbox OMS over real HTTP (``wired``)."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from django.utils import timezone

from mcom.catalog import services
from mcom.catalog.models import CatalogExportTask as Task
from mcom.catalog.models import ProductSync
from mcom.cli.main import main
from mcom.commerce import config
from mcom.commerce import services as commerce
from mcom.commerce.schemas import ProductIn
from mcom.service_bus import cron, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import make_products


def test_saved_product_reaches_the_oms_with_the_configured_custom_attributes(wired: Any) -> None:
    config.set_value("mcom/catalog/custom_attributes", "color,ean")
    commerce.upsert_products([
        ProductIn(sku="TEE", name="T-shirt", custom_attributes={"color": "blue", "ean": "871", "size": "M"}),
    ])
    commerce.upsert_products([
        ProductIn(sku="TEE", name="T-shirt (new)", enabled=False, custom_attributes={"color": "navy", "ean": "871"}),
    ])
    worker.run_until_idle()
    product = wired.sandbox.api.product("TEE")
    assert product["sku"] == "TEE"
    assert product["id"] == "TEE"
    assert product["name"][0]["value"] == "T-shirt (new)"  # the latest state, sent once
    assert (product["enabled"], product["status"]) == (False, "inactive")
    assert product["custom_attributes"] == [
        {"attribute_code": "color", "value": "navy"},
        {"attribute_code": "ean", "value": "871"},
    ]
    journal = wired.sandbox.api.journal(method="magento.catalog.product_management.updated")
    assert len(journal) == 1
    sync = ProductSync.objects.get(product__sku="TEE")
    assert sync.last_synced_at is not None
    assert sync.last_error == ""


def test_failed_delivery_is_recorded_on_the_product(wired: Any) -> None:
    wired.sandbox.api.faults(fail_next=1, mode="http_503")
    commerce.upsert_products([ProductIn(sku="ERR", name="Err")])
    worker.run_until_idle()
    sync = ProductSync.objects.get(product__sku="ERR")
    assert "503" in sync.last_error
    assert "will retry" in sync.last_error
    assert sync.last_synced_at is None


def test_full_export_command_sends_the_catalog_with_progress_and_status(wired: Any) -> None:
    commerce.upsert_products(make_products(1100), run_hooks=False)
    runner = CliRunner()
    result = runner.invoke(main, ["oms:catalog-export:run"])
    assert result.exit_code == 0, result.output
    assert "complete: 1101 item(s) exported, 1101 delivered now" in result.output
    skus = {p["sku"] for p in wired.sandbox.api.products(limit=5000)}
    assert len(skus) == 1101
    assert "STANDARD" in skus
    assert "P000000" in skus
    assert "P001099" in skus
    assert wired.sandbox.api.product("STANDARD")["type"] == "shipping"
    status = runner.invoke(main, ["oms:catalog-export:status"])
    assert status.exit_code == 0
    assert "complete" in status.output
    assert "1101/1101 (100%)" in status.output
    assert not LoggedMessage.objects.filter(status__in=LoggedMessage.PENDING).exists()


def test_schedule_only_is_picked_up_by_cron(wired: Any) -> None:
    commerce.upsert_products(make_products(30), run_hooks=False)
    result = CliRunner().invoke(main, ["oms:catalog-export:run", "--schedule-only"])
    assert result.exit_code == 0
    assert "scheduled; cron will run it" in result.output
    status = CliRunner().invoke(main, ["oms:catalog-export:status"])
    assert "pending" in status.output
    assert wired.sandbox.api.products() == []
    runs = cron.run_due(force=True, only="catalog.export")
    assert runs, runs
    assert runs[0].ok, runs
    task = services.current_task()
    assert task is not None
    assert (task.status, task.processed, task.sent) == (Task.COMPLETE, 31, 31)
    assert len(wired.sandbox.api.products()) == 31


def test_cancel_a_running_export_from_another_thread_of_control(wired: Any) -> None:
    commerce.upsert_products(make_products(1500), run_hooks=False)

    def progress(task: Task) -> None:
        if task.processed > 500 and not task.cancel_requested:
            CliRunner().invoke(main, ["oms:catalog-export:run", "--cancel"])

    task = services.run_export(progress=progress, batch_size=500)
    assert task.status == Task.CANCELLED
    assert task.processed == 1001
    assert len(wired.sandbox.api.products(limit=5000)) == 1001
    assert "cancelled after 1001" in CliRunner().invoke(main, ["oms:catalog-export:status"]).output


def test_export_failures_are_left_to_the_worker_with_backoff(wired: Any) -> None:
    commerce.upsert_products(make_products(20), run_hooks=False)
    wired.sandbox.api.faults(fail_next=2, mode="http_503")
    task = services.run_export()
    assert task.status == Task.COMPLETE
    assert task.sent == 19
    retry = LoggedMessage.objects.filter(status=LoggedMessage.RETRY)
    assert retry.count() == 2
    assert all("503" in e for e in retry.values_list("last_error", flat=True))
    assert ProductSync.objects.exclude(last_error="").count() == 1  # the other one is the STANDARD shipping SKU
    LoggedMessage.objects.filter(status=LoggedMessage.RETRY).update(next_attempt_at=timezone.now())
    worker.run_until_idle()
    assert len(wired.sandbox.api.products()) == 21


def test_export_keeps_the_order_of_a_products_messages(wired: Any) -> None:
    from datetime import timedelta

    commerce.upsert_products(make_products(3), run_hooks=False)
    older = LoggedMessage.objects.create(
        direction=LoggedMessage.OUT, topic="magento.catalog.product_management.updated", message_id="older",
        kind=LoggedMessage.KIND_EVENT, entity_key="product:P000001", payload='{"product": {"sku": "P000001"}}',
        status=LoggedMessage.RETRY, next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    task = services.run_export()
    assert task.sent == 3  # STANDARD, P000000, P000002 — P000001 waits behind its older message
    newer = LoggedMessage.objects.get(entity_key="product:P000001", status=LoggedMessage.NEW)
    assert newer.pk > older.pk
    assert {p["sku"] for p in wired.sandbox.api.products()} == {"STANDARD", "P000000", "P000002"}
