"""Fixtures of the hostile-input suites: a live connector with the test routes, signed deliveries.

``MCOM_FUZZ_EXAMPLES`` raises the number of generated cases (CI runs the bounded default).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from service_bus.conftest import SECRET, _fresh_client_and_writer, deliver, effects, envelope, routes, secured

__all__ = ["SECRET", "_fresh_client_and_writer", "deliver", "effects", "envelope", "routes", "secured"]

EXAMPLES = int(os.environ.get("MCOM_FUZZ_EXAMPLES", "0") or 0)


def examples(default: int) -> int:
    """The number of cases to run: ``MCOM_FUZZ_EXAMPLES`` when set, else the bounded CI default."""
    return EXAMPLES or default


def rss_mib() -> float:
    """This process's resident set size (the in-process server's memory), MiB."""
    text = Path("/proc/self/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    assert m
    return int(m.group(1)) / 1024


@pytest.fixture
def live(connector: Any, secured: Any, effects: Any) -> Any:
    return connector
