"""Page-wise delivery of logged catalog messages during a full export.

The export writes each page to the message log first (``outbox.enqueue_many``) and then sends
that page itself through the OMS client, with three statements per page instead of several
per message:

1. **claim** the page's rows that are ``new`` and first of their entity (no earlier open row
   of the same ``entity_key`` — the worker's per-entity order), as ``processing`` under a lease;
2. **send** each claimed row with ``client.event`` (its logged ``message_id``, its logged payload);
3. **record** the outcome set-based: sent rows ``complete`` (+ ``ProductSync.last_synced_at``),
   failed rows ``retry`` with the worker's backoff (or ``error`` when not retryable / exhausted),
   rows not attempted released to ``new``.

Rows not claimed (an older message of the product is still open) stay for the worker, which
sends them in order. After :data:`MAX_CONSECUTIVE_FAILURES` failures in a row the page stops
(the OMS looks down) and the rest is released.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from mcom import envconfig
from mcom.catalog.models import ProductSync
from mcom.catalog.sync import PRODUCT_KEY
from mcom.service_bus import methods
from mcom.service_bus.errors import MessageError
from mcom.service_bus.models import LoggedMessage as LM

log = logging.getLogger("mcom.catalog.export")

MAX_CONSECUTIVE_FAILURES = 3
_OPEN = (LM.NEW, LM.RETRY, LM.PROCESSING, LM.ERROR)


def _skus(keys: Sequence[str]) -> list[str]:
    return [k[len(PRODUCT_KEY) :] for k in keys if k.startswith(PRODUCT_KEY)]


def send_page(ids: list[int]) -> tuple[int, int]:
    """Send the logged messages ``ids`` now; returns ``(sent, not sent)``. See the module docstring.

    Raises ``envconfig.ConfigError`` when ``[service_bus]`` is incomplete (nothing is claimed then).
    """
    from mcom.service_bus import worker
    from mcom.service_bus.client import get_client

    if not ids:
        return 0, 0
    client = get_client()
    queue = envconfig.current().queue
    now = timezone.now()
    lease = now + timedelta(seconds=queue.lease_seconds)
    earlier_open = LM.objects.filter(
        direction=LM.OUT, entity_key=OuterRef("entity_key"), id__lt=OuterRef("id"), status__in=_OPEN
    )
    with transaction.atomic():
        LM.objects.filter(pk__in=ids, direction=LM.OUT, status=LM.NEW).filter(~Exists(earlier_open)).update(
            status=LM.PROCESSING, locked_until=lease, updated_at=now
        )
        rows = list(
            LM.objects.filter(pk__in=ids, status=LM.PROCESSING, locked_until=lease)
            .order_by("id")
            .values_list("id", "message_id", "entity_key", "payload", "attempts")
        )
    sent: list[tuple[int, str]] = []
    failed: list[tuple[int, str, int, str, bool]] = []
    streak = 0
    attempted = 0
    for log_id, message_id, key, payload, attempts in rows:
        if streak >= MAX_CONSECUTIVE_FAILURES:
            break
        attempted += 1
        try:
            client.event(methods.PRODUCT_UPDATED, json.loads(payload), message_id=message_id)
        except MessageError as e:
            streak += 1
            failed.append((log_id, key, attempts + 1, f"{type(e).__name__}: {e}", e.retryable))
        else:
            streak = 0
            sent.append((log_id, key))
    done = timezone.now()
    with transaction.atomic():
        if sent:
            LM.objects.filter(pk__in=[i for i, _ in sent], locked_until=lease).update(
                status=LM.COMPLETE, attempts=F("attempts") + 1, processed_at=done, updated_at=done,
                locked_until=None, last_error="",
            )
            ProductSync.objects.filter(product__sku__in=_skus([k for _, k in sent])).update(
                last_synced_at=done, last_error=""
            )
        for log_id, key, attempts, error, retryable in failed:
            retry = retryable and attempts < queue.max_attempts
            LM.objects.filter(pk=log_id, locked_until=lease).update(
                status=LM.RETRY if retry else LM.ERROR, attempts=attempts, last_error=error[:4000], updated_at=done,
                locked_until=None,
                next_attempt_at=done + timedelta(seconds=worker.backoff_seconds(attempts, queue)) if retry else done,
            )
            ProductSync.objects.filter(product__sku__in=_skus([key])).update(
                last_error=f"{error} (will retry)"[:2000] if retry else error[:2000]
            )
        rest = [r[0] for r in rows[attempted:]]
        if rest:
            LM.objects.filter(pk__in=rest, locked_until=lease).update(status=LM.NEW, locked_until=None, updated_at=done)
    if failed:
        log.warning("catalog export: %d of %d message(s) of a page failed, e.g. %s", len(failed), len(rows), failed[0][3])
    return len(sent), len(ids) - len(sent)
