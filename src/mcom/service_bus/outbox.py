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

from mcom.service_bus import log as message_log
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
    route = _route(method)
    payload = _dumps(params)
    with transaction.atomic():
        if dedupe_key is not None:
            waiting = message_log.waiting_by_dedupe_key([dedupe_key])
            if waiting:
                message_log.replace_waiting_payloads({waiting[dedupe_key]: payload})
                return LoggedMessage.objects.get(pk=waiting[dedupe_key])
        return message_log.insert_outbound_one(method, route.kind, str(uuid.uuid4()), entity_key=entity_key,
                                               dedupe_key=dedupe_key, payload=payload)


def _route(method: str) -> registry.OutboundRoute:
    route = registry.outbound_route(method)
    if route is None:
        raise LookupError(f"outbound method {method} is not declared (service_bus.registry.outbound)")
    return route


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
    bulk UPDATE for replaced payloads and one multi-row INSERT per chunk
    (:func:`mcom.service_bus.log.insert_outbound`) — not
    one round trip per message.
    Returns the log ids, one per distinct message, in the order of first appearance.
    """
    route = _route(method)
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
        waiting = message_log.waiting_by_dedupe_key(list(by_key))
        message_log.replace_waiting_payloads({pk: _dumps(by_key[key].params) for key, pk in waiting.items()})
        new_pos: list[str | int] = []
        new_rows: list[tuple[str, str, str | None, str]] = []
        for pos in order:
            if isinstance(pos, str) and pos in waiting:
                continue
            item = by_key[pos] if isinstance(pos, str) else plain[pos]
            new_pos.append(pos)
            new_rows.append((str(uuid.uuid4()), item.entity_key, item.dedupe_key, _dumps(item.params)))
        new_ids = message_log.insert_outbound(method, route.kind, new_rows)
    ids: list[int] = []
    new_by_pos = dict(zip(new_pos, new_ids, strict=True))
    for pos in order:
        ids.append(waiting[pos] if isinstance(pos, str) and pos in waiting else new_by_pos[pos])
    return ids
