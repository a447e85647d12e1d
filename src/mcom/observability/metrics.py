"""``/metrics``: the message log in Prometheus text format (prometheus_client).

Gauges and the latency histograms are computed from the database at scrape time by
:class:`MessageLogCollector`, so every process (web, worker, several uvicorn workers) reports the
same numbers. Counters of things that happen in a process (refused deliveries, failed attempts,
OMS errors, parked messages: :mod:`mcom.service_bus.events`) are of the scraped process.
Metric names are listed in docs/deployment.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from mcom.service_bus import integration
from mcom.service_bus.models import LoggedMessage as LM

#: latency buckets in seconds (queued → sent, received → applied)
BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400)
#: distinct error texts read per scrape for the error-class gauge
ERROR_SAMPLE = 2000


def _error_class(text: str) -> str:
    """``OmsUnavailable: …`` → ``OmsUnavailable``; ``gave up after 10 attempts: X: …`` → ``X``."""
    text = text.removeprefix("delivered, but ")
    if text.startswith("gave up after "):
        text = text.split(": ", 1)[-1]
    head = text.split(":", 1)[0].strip()
    return head if head.isidentifier() else "other"


class MessageLogCollector(Collector):
    """Everything ``/metrics`` reads from ``mcom_logged_messages_queue`` (a few grouped queries)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        messages = GaugeMetricFamily("mcom_messages", "Messages in the log by direction, topic and status",
                                     labels=["direction", "topic", "status"])
        depth = GaugeMetricFamily("mcom_queue_depth", "Messages waiting for the worker (new, retry, processing)",
                                  labels=["direction"])
        parked = GaugeMetricFamily("mcom_queue_parked", "Messages parked in status error", labels=["direction"])
        retries = GaugeMetricFamily("mcom_queue_retries", "Attempts beyond the first, summed over the log",
                                    labels=["direction"])
        per_direction: dict[str, dict[str, int]] = {d: {"depth": 0, "parked": 0} for d, _ in LM.DIRECTIONS}
        for row in LM.objects.order_by().values("direction", "topic", "status").annotate(n=Count("id")):
            messages.add_metric([row["direction"], row["topic"], row["status"]], row["n"])
            bucket = per_direction.setdefault(row["direction"], {"depth": 0, "parked": 0})
            if row["status"] in LM.PENDING:
                bucket["depth"] += row["n"]
            elif row["status"] == LM.ERROR:
                bucket["parked"] += row["n"]
        for d, values in per_direction.items():
            depth.add_metric([d], values["depth"])
            parked.add_metric([d], values["parked"])
        done = {r["direction"]: int(r["n"] or 0) for r in LM.objects.filter(attempts__gt=1).order_by()
                .values("direction").annotate(n=Sum(F("attempts") - 1))}
        for d in per_direction:
            retries.add_metric([d], done.get(d, 0))
        yield from (messages, depth, parked, retries)

        oldest = GaugeMetricFamily("mcom_queue_oldest_due_age_seconds",
                                   "Age of the longest-waiting due message (0 when none is due)", labels=["direction"])
        due = {r["direction"]: r["first"] for r in LM.objects.filter(status__in=(LM.NEW, LM.RETRY), next_attempt_at__lte=now)
               .order_by().values("direction").annotate(first=Min("next_attempt_at"))}
        for d in per_direction:
            first = due.get(d)
            oldest.add_metric([d], max((now - first).total_seconds(), 0.0) if first else 0.0)
        yield oldest

        failing = GaugeMetricFamily("mcom_messages_failing", "Messages in retry or error by error class",
                                    labels=["direction", "error_class"])
        classes: dict[tuple[str, str], int] = {}
        errors = (LM.objects.filter(status__in=(LM.RETRY, LM.ERROR)).exclude(last_error="").order_by()
                  .values_list("direction", "last_error").annotate(n=Count("id"))[:ERROR_SAMPLE])
        for direction, last_error, n in errors:
            key = (direction, _error_class(last_error))
            classes[key] = classes.get(key, 0) + n
        for (d, cls), n in sorted(classes.items()):
            failing.add_metric([d, cls], n)
        yield failing

        yield from self._latency()

        enabled = GaugeMetricFamily("mcom_integration_enabled", "1 while the integration is enabled")
        enabled.add_metric([], 1 if integration.enabled() else 0)
        yield enabled

    def _latency(self) -> Iterator[Metric]:
        duration = ExpressionWrapper(F("processed_at") - F("created_at"), output_field=DurationField())
        aggregates = {f"le{i}": Count("id", filter=Q(d__lte=timedelta(seconds=b))) for i, b in enumerate(BUCKETS)}
        hist = HistogramMetricFamily("mcom_message_latency_seconds",
                                     "Queued/received → sent/applied, per completed message in the log",
                                     labels=["direction"])
        for d, _ in LM.DIRECTIONS:
            qs = LM.objects.filter(direction=d, status=LM.COMPLETE, processed_at__isnull=False).annotate(d=duration)
            agg = qs.aggregate(n=Count("id"), total=Sum("d"), **aggregates)
            buckets = [(str(float(b)), int(agg[f"le{i}"] or 0)) for i, b in enumerate(BUCKETS)]
            buckets.append(("+Inf", int(agg["n"] or 0)))
            total = agg["total"]
            seconds = total.total_seconds() if isinstance(total, timedelta) else float(total or 0) / 1e6
            hist.add_metric([d], buckets, max(seconds, 0.0))
        yield hist


_collector = MessageLogCollector()


def render() -> bytes:
    """The text exposition: the database collector plus this process's counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_collector)
    return generate_latest(registry) + generate_latest(REGISTRY)
