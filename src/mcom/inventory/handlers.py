"""Inbound OMS message handlers of the inventory module (registered with service_bus.registry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcom.inventory import services
from mcom.service_bus import methods, registry
from mcom.service_bus.registry import InboundMessage


def stock_entity_key(params: Mapping[str, Any]) -> str:
    """``stock:{aggregate_id}``: snapshots of one aggregate are applied in arrival order."""
    snap = (params.get("snapshot") or params.get("Snapshot")) if isinstance(params, Mapping) else None
    agg = (snap.get("aggregate_id", snap.get("AggregateId")) if isinstance(snap, Mapping) else None) or "unknown"
    return f"stock:{agg}"


@registry.inbound(methods.STOCK_UPDATED, module="inventory", entity_key=stock_entity_key, supersedable=True)
def stock_updated(message: InboundMessage) -> dict[str, Any]:
    """Apply one stock snapshot message (FULL / NONZERO / DELTA) to its aggregate.

    Returns the outcome (applied, stale, unknown SKUs, zeroed, not covered, reindexed rows).
    Raises ``InvalidPayload`` for a malformed snapshot (the message is parked with the error).
    Idempotent: a repeated delivery writes the same state. State-based (``supersedable``): a
    parked snapshot is superseded by the next snapshot of its aggregate.
    """
    return services.apply_stock_update(message.params, received_at=message.received_at)
