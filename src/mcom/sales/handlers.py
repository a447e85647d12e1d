"""Inbound OMS messages of the sales module (oms-protocol.md §8.2, §8.3, §8.10, §8.11).

Every handler parses its params at the edge (:mod:`mcom.sales.messages`, ``InvalidPayload`` when a
field it needs is missing) and calls one service of :mod:`mcom.sales.lifecycle`. A message about an
order or line the connector does not know (yet) raises ``RetryLater``: the worker retries it with
backoff and parks it with that error when it gives up. All handlers are idempotent. Messages of one
order share the entity key ``order:<increment id>`` and are processed in arrival order.
"""

from __future__ import annotations

from typing import Any

from mcom.sales import lifecycle, messages
from mcom.service_bus import methods, registry
from mcom.service_bus.registry import InboundMessage


@registry.inbound(methods.ORDER_UPDATED, module="sales", entity_key=messages.OrderUpdate.entity_key_of,
                  supersedable=True)
def order_updated(message: InboundMessage) -> dict[str, Any]:
    """Order and line statuses from the OMS (the OMS code is kept verbatim in ``oms_status``).

    State-based (``supersedable``): a parked update is superseded by the next update of the order."""
    return lifecycle.apply_order_update(messages.parse_order_update(message.params))


@registry.inbound(methods.ORDER_CREATED, module="sales", entity_key=messages.OrderUpdate.entity_key_of)
def order_created(message: InboundMessage) -> dict[str, Any]:
    """The OMS acknowledged an order: history comment, order marked exported."""
    return lifecycle.record_order_created(messages.parse_order_update(message.params))


@registry.inbound(methods.SHIPMENT_DONE, module="sales", entity_key=messages.ShipmentDone.entity_key_of)
def shipment_done(message: InboundMessage) -> dict[str, Any]:
    """A shipment left: commerce shipment with items and tracking; the order state follows."""
    return lifecycle.record_shipment(messages.parse_shipment_done(message.params), message.params)


@registry.inbound(methods.REQUEST_SHIPPING_DETAILS, module="sales", entity_key=messages.ShipmentDone.entity_key_of,
                  synchronous_answer=True)
def request_shipping_details(message: InboundMessage) -> Any:
    """Carrier role, answered synchronously: the ``result`` is the array of packages with tracking."""
    return lifecycle.answer_shipping_details(messages.parse_shipping_details_request(message.params))


@registry.inbound(methods.REQUEST_SHIPMENT, module="sales", entity_key=messages.ShipmentRequest.entity_key_of)
def request_shipment(message: InboundMessage) -> dict[str, Any]:
    """Warehouse role: the request is acknowledged and recorded in the order's history."""
    return lifecycle.record_shipment_request(messages.parse_shipment_request(message.params))
