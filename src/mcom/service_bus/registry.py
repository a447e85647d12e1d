"""Explicit registries filled at app-ready time: inbound handlers, outbound hooks, cron jobs.

Domain apps register in their ``handlers.py`` / ``cron.py`` (imported from ``AppConfig.ready``)::

    @inbound(methods.ORDER_UPDATED, module="sales", entity_key=lambda p: f"order:{p['order']['id']}")
    def order_updated(message: InboundMessage) -> dict | None: ...

A duplicate registration raises. Only handlers of modules enabled in ``env.toml`` are routed and
subscribed to; a message for a disabled module's method is answered "method not found".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcom import envconfig

log = logging.getLogger("mcom.service_bus.endpoint")

MAX_ENTITY_KEY = 191


@dataclass(frozen=True)
class InboundMessage:
    """What a handler receives: the logged row's id, method, id and decoded params."""

    log_id: int
    method: str
    message_id: str
    params: Mapping[str, Any]
    attempts: int
    received_at: datetime


Handler = Callable[[InboundMessage], "dict[str, Any] | None"]
EntityKeyFn = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class InboundRoute:
    method: str
    module: str
    handler: Handler
    entity_key: EntityKeyFn
    synchronous_answer: bool = False  # queries answered in the HTTP response (carrier shipping details)
    #: state-based: each message carries the whole state of its entity, so a newer message of the
    #: same topic and entity supersedes a parked one (it stops holding the entity back)
    supersedable: bool = False


@dataclass(frozen=True)
class OutboundMessage:
    """What outbound hooks receive after a send attempt."""

    log_id: int
    method: str
    message_id: str
    entity_key: str
    params: Mapping[str, Any]
    attempts: int


SentHook = Callable[[OutboundMessage, Any], None]
#: set-based ``on_sent``: ``fn([(message, result), …])`` for a run of delivered messages
SentManyHook = Callable[[list[tuple[OutboundMessage, Any]]], None]
FailedHook = Callable[[OutboundMessage, str, bool], None]  # (message, error, will_retry)


@dataclass(frozen=True)
class OutboundRoute:
    method: str
    module: str
    kind: str  # LoggedMessage.KIND_*
    on_sent: SentHook | None = None
    on_failed: FailedHook | None = None
    on_sent_many: SentManyHook | None = None


@dataclass(frozen=True)
class CronJob:
    name: str
    every_seconds: float
    run: Callable[[], Any]
    module: str | None = None  # None = always on


@dataclass
class _Registry:
    inbound: dict[str, InboundRoute] = field(default_factory=dict)
    outbound: dict[str, OutboundRoute] = field(default_factory=dict)
    cron: dict[str, CronJob] = field(default_factory=dict)


_registry = _Registry()


class DuplicateRegistration(RuntimeError):
    pass


def _default_entity_key(params: Mapping[str, Any]) -> str:
    return "global"


def inbound(
    method: str,
    *,
    module: str,
    entity_key: EntityKeyFn = _default_entity_key,
    synchronous_answer: bool = False,
    supersedable: bool = False,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` for an inbound ``method`` of ``module``.

    ``supersedable=True`` declares a state-based topic (a stock snapshot, an order status update):
    a message of it parked as ``error`` becomes ``ignored`` ("superseded by #N: …") as soon as a
    later message of the same entity and topic exists, so one bad message does not hold back the
    newer ones. Messages that depend on their predecessor (an order create) must not declare it.
    """

    def deco(fn: Handler) -> Handler:
        if method in _registry.inbound:
            raise DuplicateRegistration(f"inbound handler for {method} registered twice")
        _registry.inbound[method] = InboundRoute(method, module, fn, entity_key, synchronous_answer, supersedable)
        return fn

    return deco


def outbound(
    method: str,
    *,
    module: str,
    kind: str,
    on_sent: SentHook | None = None,
    on_failed: FailedHook | None = None,
    on_sent_many: SentManyHook | None = None,
) -> None:
    """Declare an outbound ``method`` (its communication kind) and optional result hooks.

    ``on_sent_many`` is the set-based form of ``on_sent``: the worker calls it with the
    ``(message, result)`` pairs of one recorded run (in send order) inside the transaction that marks
    them complete. Should it raise, the worker calls it again once per message, each in its own
    savepoint, and parks only the failing ones — so ``on_sent_many([pair])`` must do what ``on_sent``
    does for one message, and be idempotent.
    """
    if method in _registry.outbound:
        raise DuplicateRegistration(f"outbound method {method} registered twice")
    _registry.outbound[method] = OutboundRoute(method, module, kind, on_sent, on_failed, on_sent_many)


def cron_job(name: str, *, every_seconds: float, module: str | None = None) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def deco(fn: Callable[[], Any]) -> Callable[[], Any]:
        if name in _registry.cron:
            raise DuplicateRegistration(f"cron job {name} registered twice")
        _registry.cron[name] = CronJob(name, every_seconds, fn, module)
        return fn

    return deco


def _enabled(module: str | None) -> bool:
    return module is None or module == "service_bus" or envconfig.current().module_enabled(module)


def inbound_route(method: str) -> InboundRoute | None:
    """The route for ``method`` if its module is enabled, else None."""
    route = _registry.inbound.get(method)
    return route if route is not None and _enabled(route.module) else None


def outbound_route(method: str) -> OutboundRoute | None:
    return _registry.outbound.get(method)


def supersedable_topics(direction: str = "in") -> frozenset[str]:
    """The state-based topics of ``direction`` (inbound only: ``inbound(..., supersedable=True)``)."""
    if direction != "in":
        return frozenset()
    return frozenset(m for m, r in _registry.inbound.items() if r.supersedable)


def topics() -> list[str]:
    """Methods to subscribe to: inbound methods of the enabled modules, sorted."""
    return sorted(m for m, r in _registry.inbound.items() if _enabled(r.module))


def cron_jobs() -> list[CronJob]:
    return [j for j in _registry.cron.values() if _enabled(j.module)]


def entity_key_for(route: InboundRoute, params: Mapping[str, Any], message_id: str) -> str:
    """The route's entity key, or a key of its own when the key function fails on bad params."""
    try:
        key = str(route.entity_key(params))
    except (LookupError, TypeError, AttributeError, ValueError) as e:
        log.warning("%s %s: entity key not derivable (%s); message kept unordered", route.method, message_id, type(e).__name__)
        return f"unkeyed:{message_id}"[:MAX_ENTITY_KEY]
    return key[:MAX_ENTITY_KEY] or "global"


def all_inbound() -> dict[str, InboundRoute]:
    return dict(_registry.inbound)
