"""The outbox: domain code queues outbound messages here, inside its own transaction.

Nothing is sent here; the worker sends after commit, in order, with retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from mcom.service_bus import registry
from mcom.service_bus.models import LoggedMessage


def _dumps(params: Mapping[str, Any]) -> str:
    return json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=str)


def enqueue(
    method: str,
    params: Mapping[str, Any],
    *,
    entity_key: str,
    dedupe_key: str | None = None,
) -> LoggedMessage:
    """Write an outbound message to ``mcom_logged_messages_queue`` (status ``new``).

    Call inside the transaction of the business change that caused it. With ``dedupe_key``, a
    message with the same key that is still waiting (``new``/``retry``, not being sent) gets the new
    params instead of a second row being added, so rapid successive changes send the latest state once.
    """
    route = registry.outbound_route(method)
    if route is None:
        raise LookupError(f"outbound method {method} is not declared (service_bus.registry.outbound)")
    payload = _dumps(params)
    now = timezone.now()
    with transaction.atomic():
        if dedupe_key is not None:
            waiting = (
                LoggedMessage.objects.select_for_update()
                .filter(direction=LoggedMessage.OUT, dedupe_key=dedupe_key, status=LoggedMessage.NEW)
                .order_by("-id")
                .first()
            )
            if waiting is not None:
                waiting.payload = payload
                waiting.updated_at = now
                waiting.save(update_fields=["payload", "updated_at"])
                return waiting
        return LoggedMessage.objects.create(
            direction=LoggedMessage.OUT,
            topic=method,
            message_id=str(uuid.uuid4()),
            kind=route.kind,
            entity_key=entity_key,
            dedupe_key=dedupe_key,
            payload=payload,
            status=LoggedMessage.NEW,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
