"""Poison isolation in the order export pass: an order that cannot be read back or mapped fails
alone with its reason (on the order and in the log); every other order of the pass is exported,
and ``oms:orders:sync`` prints one line for it instead of a traceback.

The poison is stored by raw SQL, as a bug or an older version could have stored it: a grand total
with more digits than its column holds (SQLite stores it; PostgreSQL refuses it at the column, so
there the poison is a line quantity of ``NaN``, which the mapper cannot use).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from click.testing import CliRunner
from django.db import connection
from tests.sales.conftest import PlaceOrder

from mcom.commerce.models import Order, OrderItem
from mcom.sales import export, jobs
from mcom.service_bus import methods, worker
from mcom.service_bus.models import LoggedMessage

POISONS = ["grand_total_too_long", "nan_quantity"]


def poison(order: Order, kind: str) -> None:
    with connection.cursor() as cur:
        if kind == "grand_total_too_long":
            cur.execute(f"UPDATE {Order._meta.db_table} SET grand_total = %s WHERE id = %s",
                        ["17990000000.0000", order.pk])
        else:
            cur.execute(f"UPDATE {OrderItem._meta.db_table} SET qty_ordered = 'NaN' WHERE order_id = %s",
                        [order.pk])


def skip_unstorable(kind: str) -> None:
    if kind == "grand_total_too_long" and connection.vendor != "sqlite":
        pytest.skip("PostgreSQL refuses the value at the column: it can never be stored")


@pytest.mark.parametrize("kind", POISONS)
def test_a_poison_order_fails_alone_and_the_rest_of_the_pass_is_queued(
        place: PlaceOrder, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    skip_unstorable(kind)
    orders = [place() for _ in range(5)]
    bad = orders[2]
    poison(bad, kind)
    with caplog.at_level(logging.WARNING, logger="mcom.sales"):
        result = jobs.export_orders()
    print(f"poison {kind}: {result}")
    assert result == {"queued": 4, "already": 0, "failed": 1, "skipped": 0}
    state, error = Order.objects.filter(pk=bad.pk).values_list("oms_export_state", "oms_export_error").get()
    assert state == Order.EXPORT_FAILED
    assert error.startswith("order cannot be")
    assert "\n" not in error
    assert any(bad.increment_id in r.getMessage() and "not exported" in r.getMessage() for r in caplog.records)
    good = [o.pk for o in orders if o.pk != bad.pk]
    assert set(Order.objects.filter(pk__in=good).values_list("oms_export_state", flat=True)) == {Order.EXPORT_QUEUED}
    keys = set(LoggedMessage.objects.filter(topic=methods.ORDER_CREATE).values_list("entity_key", flat=True))
    assert keys == {export.entity_key(o.increment_id) for o in orders if o.pk != bad.pk}
    # the next pass leaves it failed (backoff) and does not stop on it either
    place()
    assert jobs.export_orders() == {"queued": 1, "already": 0, "failed": 0, "skipped": 0}


@pytest.mark.parametrize("kind", POISONS)
def test_orders_sync_prints_one_line_for_a_poison_order(
        wired: Any, env: Any, place: PlaceOrder, kind: str) -> None:
    from mcom.cli.main import main

    skip_unstorable(kind)
    env(queue__backoff_base_seconds=0)
    orders = [place() for _ in range(3)]
    bad = orders[0]
    poison(bad, kind)
    result = CliRunner().invoke(main, ["oms:orders:sync"])
    print(result.output)
    assert result.exit_code == 1
    assert result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "Sent 2 orders, failed 1." in result.output
    failed_lines = [ln for ln in result.output.splitlines() if ln.strip().startswith("failed ")]
    assert len(failed_lines) == 1
    assert bad.increment_id in failed_lines[0]
    assert "order cannot be" in failed_lines[0]
    api = wired.sandbox.api
    assert sorted(o["id"] for o in api.orders()) == sorted(o.increment_id for o in orders[1:])
    worker.run_until_idle()  # nothing left queued for the poison order
    assert not LoggedMessage.objects.filter(entity_key=export.entity_key(bad.increment_id)).exists()
