"""Outbound declaration, cron job and commerce hooks of the sales module (imported at app-ready).

- ``ORDER_CREATE`` is an asynchronous command (``delegate/oms``); its hooks set the order's
  export state (:func:`mcom.sales.export.export_sent` / :func:`~mcom.sales.export.export_failed`).
- Cron ``sales.export_orders`` (every 5 s): one export pass (:func:`mcom.sales.export.queue_orders`)
  until no order is due (no cap; each batch commits and wakes the sender), ended early only by a
  stop request of the worker.
- ``commerce.hooks.order_placed`` → synchronous export when configured;
  ``commerce.hooks.order_status_guard`` → local status changes of exported orders are refused.
"""

from __future__ import annotations

import logging
from typing import Any

from mcom.commerce import hooks
from mcom.sales import export, lifecycle
from mcom.service_bus import methods, registry, worker
from mcom.service_bus.models import LoggedMessage

EXPORT_EVERY_SECONDS = 5.0

log = logging.getLogger("mcom.sales")


def _log_exported(message: registry.OutboundMessage) -> None:
    log.info("order %s exported to the OMS (message %d)", message.entity_key.removeprefix("order:"), message.log_id)


def _on_sent(message: registry.OutboundMessage, result: Any) -> None:
    export.export_sent(message.params, result)
    _log_exported(message)


def _on_sent_many(sent: list[tuple[registry.OutboundMessage, Any]]) -> None:
    export.export_sent_many([(message.params, result) for message, result in sent])
    for message, _ in sent:
        _log_exported(message)


def _on_failed(message: registry.OutboundMessage, error: str, will_retry: bool) -> None:
    export.export_failed(message.params, error, will_retry)


registry.outbound(
    methods.ORDER_CREATE,
    module="sales",
    kind=LoggedMessage.KIND_DELEGATE,
    on_sent=_on_sent,
    on_failed=_on_failed,
    on_sent_many=_on_sent_many,
)


@registry.cron_job("sales.export_orders", every_seconds=EXPORT_EVERY_SECONDS, module="sales")
def export_orders() -> dict[str, int]:
    """Queue the orders that are due for export (see :mod:`mcom.sales.export`)."""
    return export.queue_orders(stop=worker.stop_requested).summary()


hooks.register(hooks.order_placed, export.on_order_placed)
hooks.register(hooks.order_status_guard, lifecycle.guard_status_change)
