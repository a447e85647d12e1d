"""``/metrics``, ``/healthz`` and ``/readyz`` over HTTP against a live connector (real database)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from mcom.service_bus.models import CronJobState, LoggedMessage

pytestmark = pytest.mark.django_db(transaction=True)


def _message(**fields: Any) -> LoggedMessage:
    now = timezone.now()
    values: dict[str, Any] = {
        "direction": LoggedMessage.OUT, "topic": "magento.sales.order_management.create",
        "message_id": f"m-{LoggedMessage.objects.count() + 1}", "entity_key": "order:1", "payload": "{}",
        "status": LoggedMessage.COMPLETE, "created_at": now, "updated_at": now,
    }
    values.update(fields)
    return LoggedMessage.objects.create(**values)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_reports_the_message_log(connector: Any) -> None:
    now = timezone.now()
    _message(created_at=now - timedelta(seconds=3), processed_at=now)  # 3 s send latency
    _message(status=LoggedMessage.NEW, next_attempt_at=now - timedelta(seconds=120), entity_key="order:2")
    _message(status=LoggedMessage.ERROR, attempts=3, last_error="OmsRejected: order_management.create: bad", entity_key="order:3")
    _message(direction=LoggedMessage.IN, topic="magento.sales.order_management.updated", status=LoggedMessage.RETRY,
             attempts=2, last_error="RetryLater: order 7 unknown", next_attempt_at=now + timedelta(hours=1))

    r = httpx.get(f"{connector.url}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)
    assert s[("mcom_messages", (("direction", "out"), ("status", "complete"),
                                ("topic", "magento.sales.order_management.create")))] == 1
    assert s[("mcom_queue_depth", (("direction", "out"),))] == 1
    assert s[("mcom_queue_depth", (("direction", "in"),))] == 1
    assert s[("mcom_queue_parked", (("direction", "out"),))] == 1
    assert s[("mcom_queue_retries", (("direction", "out"),))] == 2
    assert s[("mcom_queue_retries", (("direction", "in"),))] == 1
    assert s[("mcom_queue_oldest_due_age_seconds", (("direction", "out"),))] >= 120
    assert s[("mcom_queue_oldest_due_age_seconds", (("direction", "in"),))] == 0  # not due yet
    assert s[("mcom_messages_failing", (("direction", "out"), ("error_class", "OmsRejected")))] == 1
    assert s[("mcom_messages_failing", (("direction", "in"), ("error_class", "RetryLater")))] == 1
    assert s[("mcom_message_latency_seconds_bucket", (("direction", "out"), ("le", "2.5")))] == 0
    assert s[("mcom_message_latency_seconds_bucket", (("direction", "out"), ("le", "5.0")))] == 1
    assert s[("mcom_message_latency_seconds_count", (("direction", "out"),))] == 1
    assert 2.9 <= s[("mcom_message_latency_seconds_sum", (("direction", "out"),))] <= 3.1
    assert s[("mcom_integration_enabled", ())] == 1
    assert ("mcom_ingest_rejections_total", (("reason", "signature"),)) in s or "mcom_ingest_rejections" in r.text


def test_metrics_token_and_localhost_rule(connector: Any, env: Any) -> None:
    env(observability__metrics_token="scrape-token-0123456789")
    url = f"{connector.url}/metrics"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 200  # loopback
    env(observability__metrics_token="scrape-token-0123456789", observability__metrics_localhost_only=False)
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 403
    assert httpx.get(url, timeout=10).status_code == 403
    ok = httpx.get(url, headers={"Authorization": "Bearer scrape-token-0123456789"}, timeout=10)
    assert ok.status_code == 200
    assert "mcom_queue_depth" in ok.text


def test_healthz_and_readyz(connector: Any, env: Any) -> None:
    assert httpx.get(f"{connector.url}/healthz", timeout=10).text == "ok\n"
    r = httpx.get(f"{connector.url}/readyz", timeout=10)
    assert r.status_code == 503
    assert "no worker pass" in r.json()["worker"]
    CronJobState.objects.create(name="service_bus.send_outbound", last_finished_at=timezone.now())
    r = httpx.get(f"{connector.url}/readyz", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["ready"] is True
    assert r.json()["database"] == "ok"
    CronJobState.objects.filter(name="service_bus.send_outbound").update(
        last_finished_at=timezone.now() - timedelta(minutes=10))
    r = httpx.get(f"{connector.url}/readyz", timeout=10)
    assert r.status_code == 503
    assert r.json()["worker"].startswith("stale")
