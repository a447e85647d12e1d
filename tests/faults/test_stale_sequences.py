"""Stale and reversed sequences over the real wire: signed deliveries to the connector's inbound
endpoint, newest first, then the real worker. The final state is the newest one: order updates and
stock snapshots apply only forward; the older messages are complete and recorded as stale."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.inventory.conftest import snapshot, stock_of
from tests.sales.conftest import PlaceOrder
from tests.service_bus.conftest import SECRET, deliver, envelope

from mcom.commerce.models import Order, Product, StockAggregate
from mcom.sales import jobs
from mcom.service_bus import methods, worker
from mcom.service_bus.models import LoggedMessage

pytestmark = pytest.mark.django_db(transaction=True)

UPDATES = [  # oldest first
    ("NEW", "2026-03-01 10:00:00"), ("APPROVED", "2026-03-01 11:00:00"), ("LOGISTICS", "2026-03-02 09:00:00"),
    ("LOGISTICSCOMPLETE", "2026-03-03 08:00:00"), ("COMPLETE", "2026-03-04 12:00:00"),
]


def send(connector: Any, method: str, params: dict[str, Any]) -> None:
    response = deliver(connector.url, envelope(method, params), secret=SECRET)
    assert response.status_code == 200, response.text


def results(method: str) -> list[dict[str, Any]]:
    return [json.loads(r or "{}") for r in LoggedMessage.objects.filter(
        direction=LoggedMessage.IN, topic=method, status=LoggedMessage.COMPLETE).order_by("id")
        .values_list("result", flat=True)]


def test_reversed_and_late_order_updates_leave_the_newest_state(wired: Any, env: Any, place: PlaceOrder) -> None:
    env(service_bus__secure_endpoint=True)
    order = place()
    jobs.export_orders()
    worker.run_until_idle()
    for status, date in reversed(UPDATES):
        send(wired.connector, methods.ORDER_UPDATED,
             {"order": {"id": order.increment_id, "status": status, "status_date": date, "lines": []}})
    send(wired.connector, methods.ORDER_UPDATED,  # a late NEW from 2020
         {"order": {"id": order.increment_id, "status": "NEW", "status_date": "2020-01-01 00:00:00", "lines": []}})
    worker.run_until_idle()
    order.refresh_from_db()
    got = results(methods.ORDER_UPDATED)
    stale = sum(1 for r in got if r.get("result") == "stale")
    print(f"order updates: delivered 6 (5 newest-first + a late 2020 NEW), complete {len(got)}, stale {stale}, "
          f"final {order.oms_status}/{order.state}")
    assert len(got) == 6
    assert stale == 5
    assert (order.oms_status, order.state) == ("COMPLETE", Order.STATE_COMPLETE)


def test_reversed_stock_snapshots_leave_the_newest_stock(wired: Any, env: Any) -> None:
    env(service_bus__secure_endpoint=True)
    Product.objects.bulk_create([Product(sku=f"SKU-{i}", name=f"Product {i}") for i in range(1, 4)])
    StockAggregate.objects.create(code="EU", name="Europe")
    for n in reversed(range(5)):  # newest (n=4) first
        send(wired.connector, methods.STOCK_UPDATED,
             snapshot(mode="DELTA", created_on=f"2026-03-0{n + 1} 10:00:00", **{"SKU-1": 10 + n, "SKU-2": 20 + n}))
    worker.run_until_idle()
    got = results(methods.STOCK_UPDATED)
    stale = sum(int(r.get("stale", 0)) for r in got)
    print(f"stock snapshots: delivered 5 newest-first, complete {len(got)}, stale rows {stale}, final {stock_of()}")
    assert len(got) == 5
    assert stock_of() == {"SKU-1": (14.0, True), "SKU-2": (24.0, True)}
    assert stale == 8  # the four older snapshots, two rows each, were recognised as stale
