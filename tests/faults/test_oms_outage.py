"""The OMS goes down (stops listening) during an export of 2,000 orders with a low attempt limit,
then comes back: every order must reach the OMS after the recovery without a person acting
(the parked creates are transient parks: ``service_bus.requeue_parked`` re-queues them)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from mcom.commerce.models import Order, Product, Store
from mcom.sales import jobs
from mcom.service_bus import cron, methods, worker
from mcom.service_bus.models import CronJobState, LoggedMessage

from .conftest import rounds

pytestmark = pytest.mark.django_db(transaction=True)


def make_orders(store: Store, count: int) -> None:
    from django.db import transaction

    from mcom.commerce.schemas import OrderIn
    from mcom.commerce.services import build_order, reserve_increment_ids, save_planned_orders

    products = {p.sku: p for p in Product.objects.all()}
    ids = reserve_increment_ids(count)
    for start in range(0, count, 500):
        planned = []
        for n in range(start, min(start + 500, count)):
            data = OrderIn.model_validate({
                "store": store.code, "customer_email": f"c{n}@example.com",
                "billing_address": {"firstname": "Ada", "lastname": "Lovelace", "street1": "1 Analytical Way",
                                    "city": "Berlin", "postcode": "10115", "country_id": "DE"},
                "lines": [{"sku": "SKU-A", "qty": 1, "tax_percent": "19"}],
                "shipping": {"method": "flatrate_flatrate", "amount": "4.95"},
            })
            planned.append(build_order(data=data, store=store, products=products, increment_id=ids[n]))
        with transaction.atomic():
            save_planned_orders(planned)
    Order.objects.update(payment_authorized=True)


def test_orders_parked_during_an_oms_outage_are_all_delivered_after_recovery(
        wired: Any, env: Any, shop: Store) -> None:
    count = rounds(2000, 5000)
    env(queue__max_attempts=2, queue__backoff_base_seconds=0, queue__batch_size=200)
    make_orders(shop, count)
    while jobs.export_orders()["queued"]:
        pass
    wired.sandbox.api.down()
    worker.run_until_idle(max_seconds=300)  # every create fails twice and is parked (low attempt limit)
    parked = LoggedMessage.objects.filter(topic=methods.ORDER_CREATE, status=LoggedMessage.ERROR).count()
    transient = LoggedMessage.objects.filter(topic=methods.ORDER_CREATE, status=LoggedMessage.ERROR,
                                             park_transient=True).count()
    assert cron.run_due(only="service_bus.requeue_parked")[0].result == 0  # still down: nothing re-queued
    wired.sandbox.api.up()
    # the job's next pass (a minute later in serve) is due now
    CronJobState.objects.filter(name="service_bus.requeue_parked").update(next_run_at=timezone.now())
    deadline = time.monotonic() + 15  # what serve's cron does for 15 s after the recovery
    requeued = 0
    while time.monotonic() < deadline:
        requeued += sum(run.result for run in cron.run_due(only="service_bus.requeue_parked"))  # every 60 s
        jobs.export_orders()
        worker.run_until_idle(max_seconds=10)
        if Order.objects.filter(oms_export_state=Order.EXPORT_EXPORTED).count() == count:
            break
        time.sleep(0.5)
    exported = Order.objects.filter(oms_export_state=Order.EXPORT_EXPORTED).count()
    at_oms = len(wired.sandbox.api.orders(limit=count + 10))
    print(f"OMS outage: orders {count}, parked during the outage {parked} (transient {transient}), re-queued "
          f"{requeued}, exported after recovery {exported}, at the OMS {at_oms}, stuck {count - exported}")
    assert parked == transient > 0
    assert exported == count
    assert at_oms == count
