"""Repeated identical warnings are summarised, not written per message per attempt: an outage that
fails thousands of sends writes a few lines and one count per minute."""

from __future__ import annotations

import logging
import time

from mcom import instance
from mcom.logsummary import SummariseRepeats


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_an_outage_of_failing_sends_writes_a_few_lines_to_the_log_file(db: None) -> None:
    log = logging.getLogger("mcom.service_bus.worker")
    path = instance.log_file()
    before = path.read_text(encoding="utf-8").count("\n") if path.exists() else 0
    for i in range(2000):
        log.warning("outbound #%d %s attempt %d failed → %s: %s", 1000 + i, "magento.sales.order_management.create",
                    1, "retry", "OmsUnavailable: cannot reach 127.0.0.1: ConnectError")
    for handler in logging.getLogger("mcom").handlers:
        handler.flush()
    written = path.read_text(encoding="utf-8").count("\n") - before
    print(f"2000 identical send warnings → {written} lines in the log file")
    assert written <= 5


def test_the_suppressed_count_is_written_when_the_window_ends() -> None:
    logger = logging.getLogger("mcom.test.logsummary")
    sink = Collect()
    sink.addFilter(SummariseRepeats(window=0.3, burst=2))
    logger.addHandler(sink)
    logger.propagate = False
    try:
        for i in range(50):
            logger.warning("send %d failed", i)
        logger.warning("another kind")
        logger.info("info passes untouched %d", 1)
        logger.info("info passes untouched %d", 2)
        logger.info("info passes untouched %d", 3)
        assert sink.lines == ["send 0 failed", "send 1 failed", "another kind", "info passes untouched 1",
                              "info passes untouched 2", "info passes untouched 3"]
        time.sleep(1.1)
        logger.warning("send %d failed", 99)  # next window: the count of the last one comes first
        assert sink.lines[6].startswith("… 48 more like this in the last ")
        assert sink.lines[6].endswith("were not logged: send %d failed")
        assert sink.lines[7] == "send 99 failed"
    finally:
        logger.removeHandler(sink)
        logger.propagate = True
