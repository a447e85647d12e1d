"""Replay protection for inbound deliveries, outliving the message log's pruning.

The rule (also in the README, "Replay protection"):

1. While its log row exists, a re-delivery of the same id and body is acknowledged and not
   stored again (``ON CONFLICT (direction, message_id) DO NOTHING``).
2. When :mod:`mcom.service_bus.prune` deletes finished inbound rows it first keeps a compact
   :class:`~mcom.service_bus.models.AppliedInbound` record of each (a SHA-256 of the exact body,
   the topic and when it was received). A later delivery of the same bytes is still logged (every
   inbound message is), but the worker finishes it as ``ignored`` ("replay of a message applied
   on …") without running its handler. Records are kept ``service_bus.replay_window_days`` after
   the message was received (365 days while the window is 0 = off, the default).
3. With a window set, a delivery whose payload carries a date (``status_date``, ``shipment_date``,
   ``created_on``, ``credit_note_date``, ``status.date`` or ``date`` of the entity object in
   ``params``) older than ``replay_window_days`` is refused at the endpoint (JSON-RPC -32602);
   nothing is stored. So a dated capture is refused by its date once its record may be gone, and
   an undated one is recognised by its record for the whole window.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from mcom import envconfig

log = logging.getLogger("mcom.service_bus.replay")

DATE_KEYS = ("status_date", "shipment_date", "created_on", "credit_note_date", "date")
DEFAULT_RECORD_DAYS = 365


def window_days() -> int:
    return envconfig.current().service_bus.replay_window_days


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not (10 <= len(value) <= 40):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dates(obj: Mapping[str, Any]) -> Iterable[datetime]:
    for key in DATE_KEYS:
        d = _parse(obj.get(key))
        if d is not None:
            yield d
    status = obj.get("status")
    if isinstance(status, Mapping):
        d = _parse(status.get("date"))
        if d is not None:
            yield d


def payload_date(params: Mapping[str, Any]) -> datetime | None:
    """The newest date the payload carries (params and its entity objects), or None."""
    found = list(_dates(params))
    for value in params.values():
        if isinstance(value, Mapping):
            found.extend(_dates(value))
    return max(found) if found else None


def too_old(params: Mapping[str, Any], now: datetime | None = None) -> str:
    """Why a delivery with ``params`` is refused as too old ("" when it is not)."""
    days = window_days()
    if not days:
        return ""
    dated = payload_date(params)
    if dated is None:
        return ""
    limit = (now or timezone.now()) - timedelta(days=days)
    if dated < limit:
        return f"delivery dated {dated.isoformat()} is older than the replay window ({days} days)"
    return ""


def digest(payload: str) -> str:
    """The compact identity of a delivery: SHA-256 of its exact body (hex, 64 chars)."""
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def record(rows: Iterable[tuple[str, str, datetime]]) -> int:
    """Keep ``(topic, payload, received_at)`` of inbound rows about to be pruned; returns how many."""
    from mcom.service_bus.models import AppliedInbound

    objs = [AppliedInbound(digest=digest(p), topic=t[:128], received_at=r) for t, p, r in rows]
    AppliedInbound.objects.bulk_create(objs, ignore_conflicts=True, batch_size=500)
    return len(objs)


def applied_among(payloads: Mapping[int, str]) -> dict[int, datetime]:
    """``{log id: received_at}`` of the given bodies applied before and pruned since (one query)."""
    from mcom.service_bus.models import AppliedInbound

    if not payloads:
        return {}
    by_digest: dict[str, list[int]] = {}
    for log_id, payload in payloads.items():
        by_digest.setdefault(digest(payload), []).append(log_id)
    found = AppliedInbound.objects.filter(digest__in=list(by_digest)).values_list("digest", "received_at")
    return {log_id: received for d, received in found for log_id in by_digest[d]}


def prune_records(now: datetime | None = None) -> int:
    """Forget records older than the replay window; returns how many were deleted."""
    from mcom.service_bus.models import AppliedInbound

    days = window_days() or DEFAULT_RECORD_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AppliedInbound.objects.filter(received_at__lt=cutoff).delete()
    return deleted
