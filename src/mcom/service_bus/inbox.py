"""Inbound side of the message log: storing deliveries (ORM path) and local inbound messages.

Inbound rows keep the whole JSON-RPC request (envelope + params) in ``payload``; the worker
reads ``params`` from it (:func:`decode_params`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from mcom.service_bus import log as message_log
from mcom.service_bus import registry
from mcom.service_bus.errors import MessageError
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.registry import entity_key_for
from mcom.service_bus.rows import InboundRow

log = logging.getLogger("mcom.service_bus.inbox")


def decode_params(payload: str) -> dict[str, Any]:
    """The ``params`` object of a stored inbound envelope (``{}`` when absent).

    Raises ``ValueError`` when the payload is not an envelope with an object ``params``.
    """
    envelope = json.loads(payload)
    if not isinstance(envelope, dict):
        raise ValueError("stored payload is not a JSON-RPC request object")
    params = envelope.get("params", {})
    if not isinstance(params, dict):
        raise ValueError("params is not an object")
    return params


def persist(row: InboundRow) -> LoggedMessage:
    """Store an inbound row once; returns the stored row (the existing one on re-delivery).

    Same id + same payload = re-delivery (nothing added); same id + different payload = a new
    message kept under :func:`~mcom.service_bus.log.variant_id`. Raises ``DatabaseError``.
    """
    return message_log.store_inbound(row)


def store_inbound(method: str, params: Mapping[str, Any], *, message_id: str | None = None) -> LoggedMessage:
    """Log an inbound message produced locally (e.g. ``oms:stock:reset``) for the worker to process.

    Call inside the caller's transaction. Raises ``LookupError`` when no enabled module handles
    ``method``. Idempotent per ``message_id`` (default: a fresh ``local-<uuid4>``).
    """
    route = registry.inbound_route(method)
    if route is None:
        raise LookupError(f"inbound method {method} is not handled by an enabled module")
    mid = message_id or f"local-{uuid.uuid4()}"
    params_dict = dict(params)
    envelope = {"jsonrpc": "2.0", "id": mid, "method": method, "params": params_dict}
    payload = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, default=str)
    return persist(InboundRow(method, mid, entity_key_for(route, params_dict, mid), payload))


@dataclass(frozen=True)
class SyncOutcome:
    ok: bool
    result: Any = None
    error: str = ""


def _inbound_message(obj: LoggedMessage, params: Mapping[str, Any]) -> registry.InboundMessage:
    return registry.InboundMessage(
        log_id=obj.pk,
        method=obj.topic,
        message_id=obj.message_id,
        params=params,
        attempts=obj.attempts,
        received_at=obj.created_at,
    )


def answer_synchronously(row: InboundRow, route: registry.InboundRoute, params: dict[str, Any]) -> SyncOutcome:
    """Log a query delivery and answer it now (routes with ``synchronous_answer=True``).

    The handler's return value is stored as the row's result and returned; a re-delivery of an
    answered query returns the stored answer without calling the handler again. A handler error
    parks the row as ``error`` and is returned as ``SyncOutcome(ok=False, error=...)``.
    Raises ``DatabaseError`` when the row cannot be stored.
    """
    with transaction.atomic():
        obj = persist(row)
        locked = LoggedMessage.objects.select_for_update().get(pk=obj.pk)
        if locked.status == LoggedMessage.COMPLETE:
            return SyncOutcome(True, json.loads(locked.result) if locked.result else None)
        locked.attempts += 1
        try:
            with transaction.atomic():
                result = route.handler(_inbound_message(locked, params))
        except MessageError as e:
            error = f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - a handler bug must become an answer, not a crash
            log.exception("synchronous handler for %s failed", row.topic)
            error = f"{type(e).__name__}: {e}"
        else:
            message_log.record_answer(locked, result=result)
            return SyncOutcome(True, result)
        message_log.record_answer(locked, error=error)
        return SyncOutcome(False, error=error)
