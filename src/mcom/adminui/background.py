"""Run admin-started long work (a full catalog export) in a background thread, never in the request.

The thread owns its database connections and closes them when done. :func:`wait` lets tests (and
a clean shutdown) wait for running work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

log = logging.getLogger("mcom.adminui")

_threads: list[threading.Thread] = []
_lock = threading.Lock()


def start(fn: Callable[[], Any], *, name: str) -> threading.Thread:
    """Start ``fn()`` in a daemon thread named ``name``; errors are logged to the connector log."""

    def run() -> None:
        try:
            fn()
        except Exception:  # thread boundary: record the failure, the caller is long gone
            log.exception("background job %s failed", name)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name, daemon=True)
    with _lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()
    return thread


def wait(timeout: float = 30.0) -> None:
    """Wait for every background job started by this process (tests, shutdown)."""
    with _lock:
        threads = list(_threads)
    for t in threads:
        t.join(timeout)
