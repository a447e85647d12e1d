"""The outbox: domain code queues outbound messages here, inside its own transaction.

Nothing is sent here; the worker sends after commit, in order, with retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
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
    bulk UPDATE for replaced payloads and one multi-row INSERT per chunk (:func:`_insert`) — not
    one round trip per message.
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
        new_pos: list[str | int] = []
        new_rows: list[tuple[str, str, str | None, str]] = []
        for pos in order:
            if isinstance(pos, str) and pos in waiting:
                continue
            item = by_key[pos] if isinstance(pos, str) else plain[pos]
            new_pos.append(pos)
            new_rows.append((str(uuid.uuid4()), item.entity_key, item.dedupe_key, _dumps(item.params)))
        new_ids = _insert(method, route.kind, now, new_rows)
    ids: list[int] = []
    new_by_pos = dict(zip(new_pos, new_ids, strict=True))
    for pos in order:
        ids.append(waiting[pos].pk if isinstance(pos, str) and pos in waiting else new_by_pos[pos])
    return ids


_TABLE = LoggedMessage._meta.db_table
# Every column of the model, in this order; the constants are the model defaults of a new outbound
# message (status new, attempts 0, no lease, no error/result, not processed).
_COLUMNS = (
    "direction, topic, message_id, kind, entity_key, dedupe_key, payload, status, attempts, "
    "next_attempt_at, locked_until, last_error, result, created_at, updated_at, processed_at"
)
_ROW = f"('{LoggedMessage.OUT}', %s, %s, %s, %s, %s, %s, '{LoggedMessage.NEW}', 0, %s, NULL, '', '', %s, %s, NULL)"
_ROW_PARAMS = 9


def _insert(method: str, kind: str, now: Any, rows: Sequence[tuple[str, str, str | None, str]]) -> list[int]:
    """INSERT ``rows`` (message id, entity key, dedupe key, payload) as new outbound messages.

    One multi-row ``INSERT … RETURNING`` per chunk (under the backend's parameter limit), the same
    row contents as ``LoggedMessage.objects.bulk_create``, without the ORM's per-object work (and, on
    PostgreSQL, without Django's ``UNNEST`` of text arrays, whose elements psycopg escapes in Python).
    Returns the new ids in the order of ``rows``.
    """
    if not rows:
        return []
    at = connection.ops.adapt_datetimefield_value(now)
    limit = connection.features.max_query_params or 65_535
    size = max(1, min(_IN_BATCH, limit // _ROW_PARAMS))
    by_message: dict[str, int] = {}
    with connection.cursor() as cur:
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            params: list[Any] = []
            for message_id, entity_key, dedupe_key, payload in chunk:
                params += (method, message_id, kind, entity_key, dedupe_key, payload, at, at, at)
            cur.execute(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES {', '.join([_ROW] * len(chunk))} "  # noqa: S608 - constants only
                "RETURNING id, message_id",
                params,
            )
            by_message.update((message_id, pk) for pk, message_id in cur.fetchall())
    return [by_message[message_id] for message_id, _, _, _ in rows]
