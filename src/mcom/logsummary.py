"""Summarise repeated warnings: a long outage must not rotate its own beginning out of the log.

:class:`SummariseRepeats` is a logging filter (installed on the log file handler by
:mod:`mcom.logconfig`). Records of level WARNING and above with the same logger, level and message
template (the format string before its arguments, so "outbound #%d … failed" for every message
counts as one kind) pass :data:`BURST` times per :data:`WINDOW_SECONDS`; the rest of that window is
counted, not written. When the window is over, one line says how many were left out::

    … 2391 more like this in the last 60 s were not logged: outbound #%d %s attempt %d failed → %s: %s

The summary is written by the next record of any kind, or at exit. INFO and DEBUG pass untouched.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass

WINDOW_SECONDS = 60.0
BURST = 3
#: how often the filter looks for finished windows (at most), in seconds
SWEEP_SECONDS = 1.0


@dataclass
class _Window:
    started: float
    passed: int = 0
    suppressed: int = 0
    last: logging.LogRecord | None = None


Key = tuple[str, int, str]


class SummariseRepeats(logging.Filter):
    """Let the first :data:`BURST` records of a kind through per window; summarise the rest."""

    def __init__(self, name: str = "", *, window: float = WINDOW_SECONDS, burst: int = BURST) -> None:
        super().__init__(name)
        self.window, self.burst = window, burst
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._windows: dict[Key, _Window] = {}
        self._swept = 0.0
        atexit.register(self.flush)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "mcom_summary", False) or record.levelno < logging.WARNING:
            self._sweep()
            return True
        key: Key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        due: list[tuple[Key, _Window]] = []
        with self._lock:
            w = self._windows.get(key)
            if w is not None and now - w.started >= self.window:
                if w.suppressed:
                    due.append((key, w))
                w = None
            if w is None:
                w = self._windows[key] = _Window(started=now)
            if w.passed < self.burst:
                w.passed += 1
                keep = True
            else:
                w.suppressed += 1
                w.last = record
                keep = False
        self._emit(due, now)
        self._sweep()
        return keep

    def _sweep(self) -> None:
        now = self._clock()
        if now - self._swept < SWEEP_SECONDS:
            return
        with self._lock:
            self._swept = now
            done = [(k, w) for k, w in self._windows.items() if now - w.started >= self.window]
            for k, _ in done:
                del self._windows[k]
        self._emit([(k, w) for k, w in done if w.suppressed], now)

    def flush(self) -> None:
        """Write the summaries of every open window (at exit)."""
        with self._lock:
            done = list(self._windows.items())
            self._windows.clear()
        self._emit([(k, w) for k, w in done if w.suppressed], self._clock())

    def _emit(self, due: list[tuple[Key, _Window]], now: float) -> None:
        for (name, level, template), w in due:
            seconds = min(now - w.started, self.window) if now > w.started else self.window
            summary = logging.LogRecord(
                name, level, w.last.pathname if w.last else "", w.last.lineno if w.last else 0,
                "… %d more like this in the last %.0f s were not logged: %s", (w.suppressed, seconds, template),
                None,
            )
            summary.mcom_summary = True
            logging.getLogger(name).handle(summary)
