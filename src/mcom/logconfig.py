"""Logging: ``var/log/mcom-connector.log`` (rotating), one line per event, secrets redacted.

Format: ``[observability] log_format`` = ``line`` (``2026-01-02 10:00:00,123 INFO [mcom.sales] order …``)
or ``json`` (one JSON object per line: ``time``, ``level``, ``logger``, ``message``; python-json-logger)
for log shippers. Request noise is filtered (:class:`QuietClientErrors`): a 404 is not logged,
another 4xx is logged at INFO, 5xx stay errors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import logging.handlers
import os
from pathlib import Path
from typing import Any, cast

from mcom import envconfig, instance

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class RedactSecrets(logging.Filter):
    """Replace every configured secret value in a record's final message with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        # cached(): loading the config logs warnings itself, which would re-enter this filter.
        cfg = envconfig.cached()
        secrets = cfg.secrets() if cfg is not None else []
        if not secrets:
            return True
        msg = record.getMessage()
        redacted = msg
        for s in secrets:
            redacted = redacted.replace(s, "***")
        if redacted != msg:
            record.msg, record.args = redacted, None
        return True


class QuietClientErrors(logging.Filter):
    """``django.request``: drop 404s (favicon, scanners), log other 4xx answers at INFO.

    A client error is the client's business (the API already answered it with the reason); only
    server errors are problems of the connector. Other loggers pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int) or not 400 <= status < 500:
            return True
        if status == 404:
            return False
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}


def _formatter() -> dict[str, Any]:
    cfg = envconfig.cached()
    if cfg is not None and cfg.observability.log_format == "json":
        return {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FORMAT, "rename_fields": JSON_RENAME}
    return {"format": FORMAT}
def private_file(path: Path) -> None:
    """Create ``path`` if missing and make it readable by the owner only (0600)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        path.chmod(0o600)
    except OSError:  # pragma: no cover - read-only or non-POSIX filesystem
        pass


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file (and its rotated copies) readable by the owner only (0600)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):  # filesystems without modes
            os.fchmod(fd, 0o600)  # a file created before by an older version or another umask
        return cast(io.TextIOWrapper, os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors))


def logging_dict() -> dict[str, Any]:
    instance.log_dir().mkdir(parents=True, exist_ok=True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "mcom.logconfig.RedactSecrets"},
                    "quiet_4xx": {"()": "mcom.logconfig.QuietClientErrors"},
                    "summarise": {"()": "mcom.logsummary.SummariseRepeats"}},
        "formatters": {"line": _formatter()},
        "handlers": {
            "file": {
                "class": "mcom.logconfig.PrivateRotatingFileHandler",
                "filename": str(instance.log_file()),
                "maxBytes": 10 * 1024 * 1024,
                "backupCount": 5,
                "encoding": "utf-8",
                "formatter": "line",
                "filters": ["quiet_4xx", "summarise", "redact"],
            },
        },
        "loggers": {
            "mcom": {"handlers": ["file"], "level": "INFO", "propagate": True},
            "django.request": {"handlers": ["file"], "level": "WARNING", "propagate": True},
        },
    }


def configure() -> None:
    logging.config.dictConfig(logging_dict())
