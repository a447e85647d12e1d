"""The export pass has no cap: more than 1,000 due orders are all queued by one cron run (in
chunks, each batch committed on its own), and a stop request ends the pass between batches."""

from __future__ import annotations

import pytest
from django.db import transaction

from mcom.commerce.models import Order, Product, Store
from mcom.sales import export, jobs
from mcom.service_bus import methods, worker
from mcom.service_bus.models import LoggedMessage

N = 1_250


def place_many(shop: Store, count: int) -> None:
    from mcom.commerce.schemas import OrderIn
    from mcom.commerce.services import build_order, reserve_increment_ids, save_planned_orders

    products = {p.sku: p for p in Product.objects.all()}
    ids = reserve_increment_ids(count)
    planned = [build_order(data=OrderIn.model_validate({
        "store": shop.code, "customer_email": f"c{n}@example.com",
        "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Analytical Way",
                            "city": "Berlin", "postcode": "10115", "country_id": "DE"},
        "lines": [{"sku": "SKU-A", "qty": 1, "tax_percent": "19"}],
        "shipping": {"method": "flatrate_flatrate", "amount": "4.95"},
    }), store=shop, products=products, increment_id=ids[n]) for n in range(count)]
    with transaction.atomic():
        save_planned_orders(planned)


@pytest.mark.django_db
def test_one_export_pass_queues_more_than_a_thousand_orders(shop: Store) -> None:
    place_many(shop, N)
    assert export.PASS_CHUNK < N
    summary = jobs.export_orders()
    assert summary == {"queued": N, "already": 0, "failed": 0, "skipped": 0}
    assert Order.objects.filter(oms_export_state=Order.EXPORT_QUEUED).count() == N
    assert LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic=methods.ORDER_CREATE).count() == N
    assert jobs.export_orders()["queued"] == 0  # idempotent: nothing is queued twice


@pytest.mark.django_db
def test_a_stop_request_ends_the_pass_between_batches(shop: Store) -> None:
    place_many(shop, 2 * export.BATCH_SIZE + 1)
    batches = 0

    def stop() -> bool:
        nonlocal batches
        batches += 1
        return batches > 2  # two batches run, then the worker is asked to stop

    result = export.queue_orders(stop=stop)
    assert len(result.queued) == 2 * export.BATCH_SIZE
    assert Order.objects.filter(oms_export_state=Order.EXPORT_NOT_EXPORTED).count() == 1
    worker.request_stop()
    try:
        assert jobs.export_orders()["queued"] == 0  # the job honours the worker's stop
    finally:
        worker.clear_stop()
    assert jobs.export_orders()["queued"] == 1
