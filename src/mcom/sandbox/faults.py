"""Fault switches: fail the next N calls, add latency, go down, expire tokens, and send the next
N stock deliveries malformed on purpose (``malformed_next``: bad quantities pass through as given,
for demos of Retry/Ignore in the connector's message log)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

FailMode = Literal["http_503", "rpc_error"]
FAIL_MODES: tuple[FailMode, ...] = ("http_503", "rpc_error")


@dataclass
class FaultState:
    fail_next: int = 0
    fail_mode: FailMode = "http_503"
    latency_ms: int = 0
    down: bool = False
    malformed_next: int = 0


class Faults:
    """Thread-safe holder of the current fault switches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = FaultState()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            s = self._state
            return {"fail_next": s.fail_next, "fail_mode": s.fail_mode, "latency_ms": s.latency_ms,
                    "down": s.down, "malformed_next": s.malformed_next}

    @property
    def latency_s(self) -> float:
        return self._state.latency_ms / 1000.0

    def configure(self, *, fail_next: int | None = None, fail_mode: FailMode | None = None,
                  latency_ms: int | None = None, malformed_next: int | None = None) -> None:
        with self._lock:
            if malformed_next is not None:
                self._state.malformed_next = max(0, malformed_next)
            if fail_next is not None:
                self._state.fail_next = max(0, fail_next)
            if fail_mode is not None:
                self._state.fail_mode = fail_mode
            if latency_ms is not None:
                self._state.latency_ms = max(0, latency_ms)

    def set_down(self, down: bool) -> None:
        with self._lock:
            self._state.down = down

    def take_failure(self) -> FailMode | None:
        """Consume one pending failure; its mode, or None when the call should go through."""
        with self._lock:
            if self._state.fail_next <= 0:
                return None
            self._state.fail_next -= 1
            return self._state.fail_mode

    def take_malformed(self) -> bool:
        """Consume one "send it malformed" switch; True when this delivery may carry bad values."""
        with self._lock:
            if self._state.malformed_next <= 0:
                return False
            self._state.malformed_next -= 1
            return True

    def reset(self) -> None:
        with self._lock:
            self._state = FaultState(down=self._state.down)
