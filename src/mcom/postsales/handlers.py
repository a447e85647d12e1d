"""Inbound OMS message handlers of the postsales module (registered with service_bus.registry).

Both messages are keyed by their order (``order:<order_id>``), so they are processed in order with
the order's other messages (export, updates, shipments, our return requests).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mcom.postsales import refunds, services
from mcom.postsales.messages import parse_refund_update, parse_return_update
from mcom.service_bus import methods, registry
from mcom.service_bus.registry import InboundMessage

MODULE = "postsales"


def _order_key(section: str) -> registry.EntityKeyFn:
    def key(params: Mapping[str, Any]) -> str:
        body = params.get(section) if isinstance(params, Mapping) else None
        order_id = body.get("order_id") if isinstance(body, Mapping) else None
        if isinstance(order_id, str | int) and not isinstance(order_id, bool) and str(order_id).strip():
            return services.order_entity_key(str(order_id).strip())
        # Malformed: a key of its own, so one parked message does not hold back others.
        digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode(), usedforsecurity=False)
        return f"{MODULE}:malformed:{digest.hexdigest()[:16]}"

    return key


@registry.inbound(methods.RETURN_UPDATED, module=MODULE, entity_key=_order_key("return"))
def return_updated(message: InboundMessage) -> dict[str, Any]:
    """``magento.postsales.return_management.updated`` (§8.8) → the local RMA.

    Raises ``InvalidPayload`` for malformed params, ``RetryLater`` while the order is unknown.
    Idempotent (see :func:`mcom.postsales.services.apply_return_update`)."""
    return services.apply_return_update(parse_return_update(message.params))


@registry.inbound(methods.REFUND_UPDATED, module=MODULE, entity_key=_order_key("refund"))
def refund_updated(message: InboundMessage) -> dict[str, Any]:
    """``magento.postsales.refund_management.updated`` (§8.9) → recorded; ``RELEASED`` → credit memo.

    Raises ``InvalidPayload`` for malformed params, ``RetryLater`` while the order is unknown.
    Idempotent per order + credit note number (see :func:`mcom.postsales.refunds.apply_refund`)."""
    return refunds.apply_refund(parse_refund_update(message.params))
