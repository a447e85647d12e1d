"""Enable / Disable of the integration (the MCOM > Integration switch, ``mcom oms:integration:*``).

Disabled means: nothing is sent to the OMS (the outbound cron job and ``oms:queue:process`` leave
the queue untouched, synchronous exports wait for cron) and deliveries of the bus are answered as
for a method this connector does not handle (JSON-RPC ``-32601``, oms-protocol: unknown or disabled
method), so nothing half-accepted is stored. What is queued stays queued and is sent after Enable.
Inbound messages received before the switch are still processed (they touch only local data).

The state is a small file ``var/integration-disabled`` (JSON: when, by whom, why) in the instance
root, because the inbound endpoint checks it on every delivery without a database round trip and
the web and worker processes of one instance share the root.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcom import instance

log = logging.getLogger("mcom.service_bus.integration")

MAX_REASON = 255


@dataclass(frozen=True)
class State:
    enabled: bool
    since: datetime | None = None
    by: str = ""
    reason: str = ""


@functools.lru_cache(maxsize=8)
def _flag_in(root: str) -> str:
    return os.path.join(root, "var", "integration-disabled")


def _flag() -> Path:
    return Path(_flag_in(str(instance.root())))


def enabled() -> bool:
    """True unless the integration was disabled: one ``stat`` per call (it runs for every delivery,
    so the flag's path is resolved once per instance root, not per call)."""
    root = os.environ.get("MCOM_ROOT")
    path = _flag_in(root) if root and os.path.isabs(root) else str(_flag())
    return not os.path.exists(path)


def state() -> State:
    path = _flag()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return State(enabled=True)
    except (OSError, ValueError):  # an unreadable flag still means disabled
        return State(enabled=False)
    since = None
    with contextlib.suppress(ValueError):
        since = datetime.fromisoformat(str(data.get("since", "")))
    return State(enabled=False, since=since, by=str(data.get("by", ""))[:150], reason=str(data.get("reason", ""))[:MAX_REASON])


def disable(*, by: str, reason: str = "") -> State:
    """Disable the integration (idempotent: a second call keeps the first record)."""
    path = _flag()
    if path.exists():
        return state()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"since": datetime.now(UTC).isoformat(timespec="seconds"), "by": by[:150], "reason": reason[:MAX_REASON]}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)
    log.warning("integration disabled by %s%s: nothing is sent to the OMS, deliveries are refused",
                by or "?", f" ({reason})" if reason else "")
    return state()


def enable(*, by: str) -> State:
    """Enable the integration again (idempotent); the queued messages are sent by the next pass."""
    try:
        _flag().unlink()
    except FileNotFoundError:
        return State(enabled=True)
    log.warning("integration enabled by %s: queued messages are sent again", by or "?")
    return State(enabled=True)
