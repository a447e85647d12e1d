"""The connector log tells the story of one order: exported, shipped, canceled — and nothing secret."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.conftest import BUS_SECRET, SANDBOX_CLIENT_SECRET
from tests.sales.conftest import PlaceOrder

from mcom import instance
from mcom.commerce.models import Order, OrderItem
from mcom.sales import jobs
from mcom.service_bus import worker
from mcom.service_bus.models import LoggedMessage


def _log_from(offset: int) -> str:
    return instance.log_file().read_text(encoding="utf-8")[offset:]


def test_one_order_is_followed_through_export_shipment_and_cancel(wired: Any, env: Any, place: PlaceOrder) -> None:
    env(queue__backoff_base_seconds=0)
    oms = wired.sandbox.api
    path = instance.log_file()
    start = path.stat().st_size if path.exists() else 0
    order = place()
    jobs.export_orders()
    worker.run_until_idle()
    order.refresh_from_db()
    assert order.oms_export_state == Order.EXPORT_EXPORTED
    sku_a = OrderItem.objects.get(order=order, sku="SKU-A")
    oms.ship(order.increment_id, lines=[f"{sku_a.pk}-1"], carrier="DHL", tracking="TRK-123")
    worker.run_until_idle()
    oms.set_status(order.increment_id, "CANCELLED", "CUSTOMERREQ")
    worker.run_until_idle()
    order.refresh_from_db()
    assert order.state == Order.STATE_CANCELED

    text = _log_from(start)
    inc = order.increment_id
    create = LoggedMessage.objects.get(direction=LoggedMessage.OUT, entity_key=f"order:{inc}")
    assert f"order {inc} exported to the OMS (message {create.pk})" in text
    assert re.search(rf"shipment \S+ of order {inc} applied: 1 × SKU-A \(DHL TRK-123\)", text), text
    assert f"order {inc} canceled by the OMS (CANCELLED (CUSTOMERREQ))" in text
    lines = [ln for ln in text.splitlines() if inc in ln]
    assert [i for i, ln in enumerate(lines) if "exported" in ln] < [i for i, ln in enumerate(lines) if "shipment" in ln]
    for secret in (BUS_SECRET, SANDBOX_CLIENT_SECRET):
        assert secret not in text


def test_parked_message_is_logged_with_its_id_and_reason(db: None) -> None:
    import logging

    from mcom.logsummary import SummariseRepeats
    from mcom.service_bus import events

    # earlier tests may have used up this minute's burst of "parked" lines: start a new window
    for handler in logging.getLogger().handlers + logging.getLogger("mcom").handlers:
        for f in handler.filters:
            if isinstance(f, SummariseRepeats):
                f.flush()
    path = instance.log_file()
    start = path.stat().st_size if path.exists() else 0
    events.attempt_failed(log_id=812, direction="in", topic="t.order", entity_key="order:000000004", attempt=3,
                          status="error", reason="InvalidPayload: order.id is missing", error=ValueError("bad"))
    assert "message 812 parked: InvalidPayload: order.id is missing [t.order order:000000004]" in _log_from(start)


@pytest.mark.parametrize(("status", "level", "logged"), [(404, None, False), (422, "INFO", True), (500, "ERROR", True)])
def test_request_noise_is_quiet(status: int, level: str | None, logged: bool) -> None:
    import logging

    from mcom.logconfig import QuietClientErrors

    record = logging.LogRecord("django.request", logging.ERROR if status >= 500 else logging.WARNING, "x", 1,
                               "answer %s", (status,), None)
    record.status_code = status
    assert QuietClientErrors().filter(record) is logged
    if logged:
        assert record.levelname == level
