"""The instance root: where env.toml, the SQLite database and the logs live.

``MCOM_ROOT`` names the root; it defaults to the current directory. Layout::

    etc/env.toml
    var/mcom.sqlite3
    var/log/mcom-connector.log
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def root() -> Path:
    """The instance root (``MCOM_ROOT`` or the current directory), absolute."""
    return Path(os.environ.get("MCOM_ROOT") or os.getcwd()).resolve()


def env_file() -> Path:
    return root() / "etc" / "env.toml"


def var_dir() -> Path:
    return root() / "var"


def log_dir() -> Path:
    return var_dir() / "log"


def log_file() -> Path:
    return log_dir() / "mcom-connector.log"


def ensure_dirs() -> None:
    """Create ``etc/``, ``var/`` and ``var/log/`` if they are missing."""
    for d in (root() / "etc", var_dir(), log_dir()):
        d.mkdir(parents=True, exist_ok=True)


def django_secret_key() -> str:
    """The instance's own signing key for sessions and CSRF (``var/django-secret-key``).

    Kept apart from the service-bus secret, so rotating one never invalidates the other. Created
    with a random value on first use, readable by the owner only.
    """
    path = var_dir() / "django-secret-key"
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a complete temp file, then link it into place: concurrent first starts agree on one key.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(50))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="utf-8").strip()
