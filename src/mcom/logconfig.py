"""Logging: ``var/log/mcom-connector.log`` (rotating), one line per event, secrets redacted."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

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


def logging_dict() -> dict[str, Any]:
    instance.log_dir().mkdir(parents=True, exist_ok=True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "mcom.logconfig.RedactSecrets"}, "summarise": {"()": "mcom.logsummary.SummariseRepeats"}},
        "formatters": {"line": {"format": FORMAT}},
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": str(instance.log_file()),
                "maxBytes": 10 * 1024 * 1024,
                "backupCount": 5,
                "encoding": "utf-8",
                "formatter": "line",
                "filters": ["summarise", "redact"],
            },
        },
        "loggers": {
            "mcom": {"handlers": ["file"], "level": "INFO", "propagate": True},
            "django.request": {"handlers": ["file"], "level": "WARNING", "propagate": True},
        },
    }


def configure() -> None:
    logging.config.dictConfig(logging_dict())
