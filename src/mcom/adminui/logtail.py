"""The tail of ``var/log/mcom-connector.log`` for the "Connector log" page.

Reads only the end of the file, groups continuation lines (tracebacks) with their record,
filters by minimum level and by a text such as an order number or entity key (``000000004``,
``order:000000004``, ``message 812``), and redacts configured secrets again (defence in depth: the
log handler already redacts, but a line may predate a secret change). JSON lines
(``log_format = "json"``) are read too.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mcom import instance
from mcom.adminui.redact import redact, secrets

LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LINE_COUNTS: tuple[int, ...] = (100, 200, 500, 1000, 5000)
DEFAULT_LINES = 200
_RECORD = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (?P<level>[A-Z]+) ")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogRecord:
    level: str
    text: str


def _tail_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path``, reading backwards in chunks."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - _CHUNK)
            fh.seek(start)
            data = fh.read(end - start) + data
            end = start
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:]


def _json_level(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    level = data.get("level") if isinstance(data, dict) else None
    return str(level) if level in LEVELS else None


def _records(lines: list[str]) -> list[LogRecord]:
    records: list[LogRecord] = []
    for line in lines:
        level = _json_level(line)
        if level is not None:
            records.append(LogRecord(level, line))
            continue
        m = _RECORD.match(line)
        if m is None and records:
            prev = records[-1]
            records[-1] = LogRecord(prev.level, f"{prev.text}\n{line}")
        else:
            records.append(LogRecord(m.group("level") if m else "INFO", line))
    return records


def tail(*, lines: int = DEFAULT_LINES, min_level: str = "", path: Path | None = None,
         contains: str = "") -> list[LogRecord]:
    """Records among the last ``lines`` lines whose level is at least ``min_level`` (all if empty)
    and whose text contains ``contains`` (case-insensitive; all if empty)."""
    path = path or instance.log_file()
    if not path.is_file():
        return []
    records = _records(_tail_lines(path, lines))
    if min_level in LEVELS:
        floor = LEVELS.index(min_level)
        records = [r for r in records if r.level not in LEVELS or LEVELS.index(r.level) >= floor]
    known = secrets()
    out = [LogRecord(r.level, redact(r.text, known)) for r in records]
    term = contains.strip().lower()
    return [r for r in out if term in r.text.lower()] if term else out
