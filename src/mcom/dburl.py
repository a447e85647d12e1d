"""Turn ``[db] url`` into a Django ``DATABASES`` entry (SQLite relative to the instance root)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mcom import instance


def sqlite_path(url: str) -> Path:
    """``sqlite:///var/x.sqlite3`` → ``<root>/var/x.sqlite3``; ``sqlite:////abs/x`` → ``/abs/x``."""
    path = url[len("sqlite://") :]
    if path.startswith("//"):
        return Path(path[1:])
    return instance.root() / path.lstrip("/")


def database_settings(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = sqlite_path(url)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": str(path.with_name(f"test-{os.getpid()}-{path.name}"))},
        }
    name = unquote(parts.path.lstrip("/")) or "mcom"
    options = dict(parse_qsl(parts.query))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        # Tests serve requests from short-lived threads: persistent connections would outlive them.
        "CONN_MAX_AGE": 0 if os.environ.get("MCOM_TESTING") else 60,
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": f"test_{name}_{os.getpid()}"},
    }


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgresql", "postgres")
