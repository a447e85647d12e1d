"""``/metrics`` (Prometheus), ``/healthz`` (liveness) and ``/readyz`` (readiness).

- ``/healthz``: the process answers (no database access): ``200 ok``.
- ``/readyz``: the database answers and a worker pass finished recently (the newest
  ``last_finished_at`` of the cron jobs, at most ``[observability] heartbeat_max_age_seconds`` old);
  ``200`` with a JSON report, else ``503`` with the failing check.
- ``/metrics``: ``Authorization: Bearer <[observability] metrics_token>`` is accepted from anywhere.
  Without a valid token: ``metrics_localhost_only = true`` (the default) serves loopback clients
  only; ``false`` serves everyone when no token is set, no one when one is. Otherwise 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from mcom import envconfig
from mcom.observability import metrics as metrics_text
from mcom.service_bus import integration
from mcom.service_bus.models import CronJobState


def _loopback(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(str(request.META.get("REMOTE_ADDR", ""))).is_loopback
    except ValueError:
        return False


def metrics_allowed(request: HttpRequest) -> bool:
    obs = envconfig.current().observability
    token = obs.metrics_token.get_secret_value()
    given = str(request.headers.get("Authorization", ""))
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return True
    if obs.metrics_localhost_only:
        return _loopback(request)
    return not token


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("forbidden: /metrics needs the metrics token or a loopback client\n", status=403,
                            content_type="text/plain; charset=utf-8")
    return HttpResponse(metrics_text.render(), content_type=CONTENT_TYPE_LATEST)


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


def readiness() -> tuple[bool, dict[str, Any]]:
    """``(ready, report)``: database reachable and a worker pass finished recently."""
    report: dict[str, Any] = {"database": "ok", "worker": "ok", "integration": "enabled" if integration.enabled()
                              else "disabled"}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        last = CronJobState.objects.aggregate(last=Max("last_finished_at"))["last"]
    except DatabaseError as e:
        report["database"] = f"unreachable: {type(e).__name__}"
        report["worker"] = "unknown"
        return False, report
    max_age = envconfig.current().observability.heartbeat_max_age_seconds
    if last is None:
        report["worker"] = "no worker pass has finished yet (is mcom serve, mcom worker or cron:run running?)"
        return False, report
    age = (timezone.now() - last).total_seconds()
    report["worker_last_pass_seconds_ago"] = round(age, 1)
    if age > max_age:
        report["worker"] = f"stale: last pass {age:.0f} s ago (limit {max_age:g} s)"
        return False, report
    return True, report


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    ready, report = readiness()
    return JsonResponse({"ready": ready, **report}, status=200 if ready else 503)
