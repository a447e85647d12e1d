"""The outbox: domain code queues outbound messages here, inside its own transaction.

Nothing is sent here; the worker sends after commit, in order, with retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class OutboxItem:
    """One message for :func:`enqueue_many`."""

    params: Mapping[str, Any]
    entity_key: str
    dedupe_key: str | None = None


_IN_BATCH = 500


def enqueue_many(method: str, items: Sequence[OutboxItem]) -> list[int]:
    """Set-based :func:`enqueue`: write many outbound messages of ``method`` in a few statements.

    Same contract as :func:`enqueue` (call inside the business transaction; a waiting ``new``
    message with the same ``dedupe_key`` gets the new params instead of a second row; within
    ``items`` the last item of a dedupe key wins). Costs one SELECT per 500 dedupe keys, one
    bulk UPDATE for replaced payloads and one bulk INSERT — not one round trip per message.
    Returns the log ids, one per distinct message, in the order of first appearance.
    """
    route = registry.outbound_route(method)
    if route is None:
        raise LookupError(f"outbound method {method} is not declared (service_bus.registry.outbound)")
    now = timezone.now()
    # Collapse duplicates of one dedupe key inside the batch (last wins, first position kept).
    order: list[str | int] = []
    by_key: dict[str, OutboxItem] = {}
    plain: list[OutboxItem] = []
    for item in items:
        if item.dedupe_key is None:
            order.append(len(plain))
            plain.append(item)
        else:
            if item.dedupe_key not in by_key:
                order.append(item.dedupe_key)
            by_key[item.dedupe_key] = item
    with transaction.atomic():
        waiting: dict[str, LoggedMessage] = {}
        keys = list(by_key)
        for start in range(0, len(keys), _IN_BATCH):
            rows = (
                LoggedMessage.objects.select_for_update()
                .filter(direction=LoggedMessage.OUT, dedupe_key__in=keys[start : start + _IN_BATCH],
                        status=LoggedMessage.NEW)
                .order_by("id")
                .only("id", "dedupe_key")
            )
            for row in rows:
                assert row.dedupe_key is not None
                waiting[row.dedupe_key] = row  # the newest waiting row per key wins
        replaced = []
        for key, row in waiting.items():
            row.payload = _dumps(by_key[key].params)
            row.updated_at = now
            replaced.append(row)
        if replaced:
            LoggedMessage.objects.bulk_update(replaced, ["payload", "updated_at"], batch_size=_IN_BATCH)
        new_rows: dict[str | int, LoggedMessage] = {}
        for pos in order:
            if isinstance(pos, str) and pos in waiting:
                continue
            item = by_key[pos] if isinstance(pos, str) else plain[pos]
            new_rows[pos] = LoggedMessage(
                direction=LoggedMessage.OUT,
                topic=method,
                message_id=str(uuid.uuid4()),
                kind=route.kind,
                entity_key=item.entity_key,
                dedupe_key=item.dedupe_key,
                payload=_dumps(item.params),
                status=LoggedMessage.NEW,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        LoggedMessage.objects.bulk_create(list(new_rows.values()), batch_size=_IN_BATCH)
    ids: list[int] = []
    for pos in order:
        row = waiting[pos] if isinstance(pos, str) and pos in waiting else new_rows[pos]
        ids.append(row.pk)
    return ids
