"""The instance root: where env.toml, the SQLite database and the logs live.

``MCOM_ROOT`` names the root; it defaults to the current directory. Layout::

    etc/env.toml
    var/mcom.sqlite3
    var/log/mcom-connector.log
"""

from __future__ import annotations

import os
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
