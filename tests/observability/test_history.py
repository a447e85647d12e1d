"""What outlives the message log: hourly activity across a prune; the attempt history with traces."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from mcom import logconfig
from mcom.adminui import chart, report
from mcom.observability import activity, attempts
from mcom.observability.models import HourlyActivity, MessageAttempt
from mcom.service_bus import events, prune
from mcom.service_bus.models import LoggedMessage


def _msg(**fields: Any) -> LoggedMessage:
    now = timezone.now()
    values: dict[str, Any] = {"direction": LoggedMessage.OUT, "topic": "t.order", "entity_key": "order:1",
                              "message_id": f"m{LoggedMessage.objects.count()}", "payload": "{}",
                              "status": LoggedMessage.COMPLETE, "created_at": now, "updated_at": now}
    values.update(fields)
    return LoggedMessage.objects.create(**values)


def test_dashboard_counts_survive_pruning_the_log(db: None) -> None:
    now = timezone.now().replace(minute=30)
    for _ in range(3):
        _msg(created_at=now - timedelta(hours=2))
    _msg(direction=LoggedMessage.IN, created_at=now - timedelta(hours=2))
    _msg(status=LoggedMessage.ERROR, created_at=now - timedelta(hours=2))
    before = report.hourly_activity(24, now=now)[-3]
    assert (before.incoming, before.outgoing, before.errors) == (1, 4, 1)
    assert prune.prune(days=0) == 4  # every finished row goes; the error row stays
    assert LoggedMessage.objects.count() == 1
    after = report.hourly_activity(24, now=now)[-3]
    assert (after.incoming, after.outgoing, after.errors) == (1, 4, 1)
    assert HourlyActivity.objects.filter(direction=LoggedMessage.OUT).get().messages == 4


def test_prune_rolls_up_first(db: None) -> None:
    _msg(created_at=timezone.now() - timedelta(days=40))  # never seen by a dashboard or the cron job
    assert prune.prune(days=30) == 1
    assert HourlyActivity.objects.get().messages == 1


def test_errors_are_visible_next_to_large_counts_on_the_log_scale(db: None) -> None:
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    drawn = chart.build([activity.HourBucket(start, 2, 22_703, 1)])
    incoming, outgoing, error = drawn.incoming[0], drawn.outgoing[0], drawn.errors[0]
    assert outgoing.height > incoming.height > 0
    assert error.height >= 0.05 * outgoing.height  # 1 error of 22,703 is still a visible bar
    assert len(drawn.error_dots) == 1
    assert [t.label for t in drawn.y_ticks] == ["0", "1", "10", "100", "1000", "10k", "100k"]


def test_failed_attempts_are_kept_with_their_trace_and_no_secret(db: None, env: Any) -> None:
    env(service_bus__secret="bus-secret-value-0123456789abcdef-xyz")
    msg = _msg(status=LoggedMessage.RETRY, attempts=1)
    try:
        raise RuntimeError("OMS said no to bus-secret-value-0123456789abcdef-xyz")
    except RuntimeError as e:
        events.attempt_failed(log_id=msg.pk, direction="out", topic=msg.topic, entity_key=msg.entity_key, attempt=1,
                              status="retry", reason=f"RuntimeError: {e}", error=e)
    [row] = attempts.history(msg.pk)
    assert row.attempt == 1
    assert row.status == "retry"
    assert "Traceback (most recent call last)" in row.trace
    assert "test_history.py" in row.trace
    assert "bus-secret-value" not in row.trace
    assert "***" in row.error
    for n in range(2, attempts.MAX_PER_MESSAGE + 5):
        events.attempt_failed(log_id=msg.pk, direction="out", topic=msg.topic, entity_key=msg.entity_key,
                              attempt=n, status="retry", reason="x")
    assert MessageAttempt.objects.filter(message_id=msg.pk).count() == attempts.MAX_PER_MESSAGE


def test_json_log_format_writes_one_object_per_line(env: Any) -> None:
    env(observability__log_format="json")
    spec = logconfig.logging_dict()["formatters"]["line"]
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"])
    record = logging.LogRecord("mcom.sales", logging.INFO, "x", 1, "order %s exported", ("000000004",), None)
    data = json.loads(formatter.format(record))
    assert data["level"] == "INFO"
    assert data["logger"] == "mcom.sales"
    assert data["message"] == "order 000000004 exported"
    assert "time" in data


def test_the_worker_records_each_failed_attempt_and_logs_the_parked_message(
        db: None, env: Any, caplog: Any) -> None:
    """An inbound message whose payload cannot be parsed: the worker's failure lands in the attempt
    history with its trace, and the parked message is one log line naming it."""
    from mcom.service_bus import inbox, worker

    msg = inbox.store_inbound("magento.sales.order_management.updated", {"order_id": "000000077", "lines": [{"id": None}]})
    with caplog.at_level(logging.WARNING, logger="mcom.service_bus.events"):
        worker.run_until_idle(max_seconds=10)
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.ERROR
    rows = list(MessageAttempt.objects.filter(message_id=msg.pk))
    assert [r.status for r in rows] == ["error"]
    assert rows[0].error == msg.last_error[:4000]
    assert "Traceback" in rows[0].trace
    assert any(f"message {msg.pk} parked" in r.getMessage() for r in caplog.records)
