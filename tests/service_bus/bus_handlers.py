"""Test-only routes of the service bus, installed in-process by fixtures and in subprocesses via
``MCOM_TEST_HANDLERS=service_bus.bus_handlers`` (``install()`` is called at app-ready).

``COUNT`` writes one row per call into ``bus_test_effect`` (inside the handler's transaction) so a
test can count how often each message took effect.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import DataError, connection

from mcom.service_bus import registry
from mcom.service_bus.errors import InvalidPayload, PermanentError, RetryLater
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.registry import InboundMessage

COUNT = "mcom.test.count"
FAIL = "mcom.test.fail"
QUERY = "mcom.test.query"
STATE = "mcom.test.state"  # state-based (supersedable): {"entity", "n", "bad"?}
OUT_EVENT = "mcom.test.out_event"
OUT_DELEGATE = "mcom.test.out_delegate"

EFFECT_TABLE = "bus_test_effect"
SENT: list[tuple[int, Any]] = []
FAILED: list[tuple[int, str, bool]] = []


def create_effect_table() -> None:
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} (seq BIGSERIAL PRIMARY KEY, log_id BIGINT, entity VARCHAR(191), n INTEGER)")
        else:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} (seq INTEGER PRIMARY KEY AUTOINCREMENT, log_id BIGINT, entity VARCHAR(191), n INTEGER)")
        cur.execute(f"DELETE FROM {EFFECT_TABLE}")


def effects() -> list[tuple[int, str, int]]:
    """(log_id, entity, n) in processing order."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT log_id, entity, n FROM {EFFECT_TABLE} ORDER BY seq")
        return [(int(a), str(b), int(c)) for a, b, c in cur.fetchall()]


def count(message: InboundMessage) -> dict[str, Any]:
    p = message.params
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {EFFECT_TABLE} (log_id, entity, n) VALUES (%s, %s, %s)",
            [message.log_id, str(p.get("entity", "")), int(p.get("n", 0))],
        )
    if p.get("sleep"):
        time.sleep(float(p["sleep"]))
    return {"counted": p.get("n", 0)}


def fail(message: InboundMessage) -> dict[str, Any] | None:
    p = message.params
    mode = p.get("mode", "retry")
    if message.attempts < int(p.get("succeed_at_attempt", 10**6)):
        if mode == "permanent":
            raise PermanentError("this cannot work")
        if mode == "crash":
            raise ZeroDivisionError("handler bug")
        if mode == "integrity":  # a real constraint violation: the same row id twice
            with connection.cursor() as cur:
                for _ in range(2):
                    cur.execute(f"INSERT INTO {EFFECT_TABLE} (seq, log_id, entity, n) VALUES (-1, %s, 'x', 0)",
                                [message.log_id])
        if mode == "nul":  # a value no PostgreSQL text column holds (SQLite stores it: raised like Django would)
            with connection.cursor() as cur:
                cur.execute(f"INSERT INTO {EFFECT_TABLE} (log_id, entity, n) VALUES (%s, %s, 0)",
                            [message.log_id, "st\x00atus"])
            if connection.vendor == "sqlite":
                raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        raise RetryLater("entity not known yet")
    return {"ok": True}


def state(message: InboundMessage) -> dict[str, Any]:
    """A state-based message: malformed when ``bad`` (parked at once), else counted like ``COUNT``."""
    if message.params.get("bad"):
        raise InvalidPayload(f"lines[0].id: null (state {message.params.get('n')})")
    return count(message)


def query(message: InboundMessage) -> Any:
    if message.params.get("explode"):
        raise PermanentError("no packages")
    return [{"id": 1, "tracking_number": "TRACK-" + str(message.params.get("order_id"))}]


def _on_sent(msg: registry.OutboundMessage, result: Any) -> None:
    SENT.append((msg.log_id, result))


def _on_failed(msg: registry.OutboundMessage, error: str, will_retry: bool) -> None:
    FAILED.append((msg.log_id, error, will_retry))


def _key(p: Any) -> str:
    return f"test:{p['entity']}"


def install() -> None:
    """Register the test routes (idempotent)."""
    inbound = registry.all_inbound()
    if COUNT not in inbound:
        registry.inbound(COUNT, module="service_bus", entity_key=_key)(count)
        registry.inbound(FAIL, module="service_bus", entity_key=_key)(fail)
        registry.inbound(QUERY, module="service_bus", synchronous_answer=True)(query)
        registry.inbound(STATE, module="service_bus", entity_key=_key, supersedable=True)(state)
    if registry.outbound_route(OUT_EVENT) is None:
        registry.outbound(OUT_EVENT, module="service_bus", kind=LoggedMessage.KIND_EVENT, on_sent=_on_sent, on_failed=_on_failed)
        registry.outbound(OUT_DELEGATE, module="service_bus", kind=LoggedMessage.KIND_DELEGATE, on_sent=_on_sent, on_failed=_on_failed)


def uninstall() -> None:
    """Remove the test routes again (so other tests see the real topic list)."""
    reg = registry._registry
    for m in (COUNT, FAIL, QUERY, STATE):
        reg.inbound.pop(m, None)
    for m in (OUT_EVENT, OUT_DELEGATE):
        reg.outbound.pop(m, None)
    SENT.clear()
    FAILED.clear()
