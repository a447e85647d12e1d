"""Recovery without a person: messages parked on a *transient* cause are re-queued when it is gone.

The retry policy gives up after ``[queue] max_attempts`` (≈ 85 min with the defaults); a longer
OMS outage parks outbound messages as ``error``, and an inbound message about an entity not known
yet is parked the same way. :func:`mcom.service_bus.log.fail` records on the row whether the
policy gave up on a retryable error (``park_transient``, from ``retry.Decision.transient``); a
permanent refusal (invalid params, no such method, HTTP 4xx, a database ``DataError``) is never
re-queued.

:func:`requeue_pass` (cron job ``service_bus.requeue_parked``, every 60 s):

- outbound (not while the integration is disabled or ``[service_bus]`` is incomplete): the
  transient parks parked before the OMS last accepted an outbound message; when none was accepted
  since, a cheap probe (:func:`oms_reachable`: one HTTP request to the bus URL; any answer but
  408/429/5xx counts) decides for all of them;
- inbound: transient parks parked at least ``[queue] requeue_inbound_after_seconds`` ago.

A re-queued row is ``retry`` and due now with its reason kept; its next failure parks it again
(its attempts are spent), so each re-queue costs one attempt. Bounded: a row is re-queued at most
``[queue] requeue_max`` times (``requeues``), at most ``[queue] requeue_per_pass`` rows per
direction and pass; each pass that re-queues logs one line per direction with the counts by topic.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import httpx
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import events, integration
from mcom.service_bus import log as message_log
from mcom.service_bus.models import Direction

log = logging.getLogger("mcom.service_bus.recovery")

PROBE_TIMEOUT = 5.0


def oms_reachable() -> bool:
    """Whether the bus answers HTTP at all (not down, not overloaded): one unauthenticated request
    to ``[service_bus] url``. A transport error, 408, 429 or 5xx is "not reachable"."""
    try:
        sb = envconfig.current().require_service_bus()
    except envconfig.ConfigError:
        return False
    timeout = httpx.Timeout(min(sb.read_timeout, PROBE_TIMEOUT), connect=min(sb.connect_timeout, PROBE_TIMEOUT))
    try:
        with httpx.Client(timeout=timeout) as http:
            status = http.get(sb.url).status_code
    except httpx.HTTPError:
        return False
    return not (status in (408, 429) or status >= 500)


def _outbound(queue: envconfig.QueueConfig) -> dict[str, int]:
    if not integration.enabled():
        return {}
    try:
        envconfig.current().require_service_bus()
    except envconfig.ConfigError:
        return {}
    parks = message_log.transient_parks(Direction.OUT, requeue_max=queue.requeue_max, limit=queue.requeue_per_pass)
    if not parks:
        return {}
    since = message_log.last_outbound_success(parks[0].id - 1)
    ready = [p for p in parks if since is not None and p.parked_at < since]
    why = "the OMS accepted messages since they were parked"
    if not ready:
        if not oms_reachable():
            log.info("%d parked outbound message(s) wait: the OMS is not reachable", len(parks))
            return {}
        ready, why = parks, "the OMS answers again"
    by_topic = message_log.requeue_parked([p.id for p in ready], requeue_max=queue.requeue_max)
    if by_topic:
        events.requeued(Direction.OUT.value, by_topic, why=why, more=len(parks) >= queue.requeue_per_pass)
    return by_topic


def _inbound(queue: envconfig.QueueConfig, now: datetime) -> dict[str, int]:
    before = now - timedelta(seconds=queue.requeue_inbound_after_seconds)
    parks = message_log.transient_parks(Direction.IN, requeue_max=queue.requeue_max, limit=queue.requeue_per_pass,
                                        parked_before=before)
    if not parks:
        return {}
    by_topic = message_log.requeue_parked([p.id for p in parks], requeue_max=queue.requeue_max)
    if by_topic:
        why = f"parked over {queue.requeue_inbound_after_seconds:g} s on a transient cause"
        events.requeued(Direction.IN.value, by_topic, why=why, more=len(parks) >= queue.requeue_per_pass)
    return by_topic


def requeue_pass(now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Re-queue what can be re-queued now (module docstring); returns ``{direction: {topic: count}}``."""
    queue = envconfig.current().queue
    if queue.requeue_max <= 0:
        return {}
    out = {Direction.OUT.value: _outbound(queue), Direction.IN.value: _inbound(queue, now or timezone.now())}
    return {d: counts for d, counts in out.items() if counts}
