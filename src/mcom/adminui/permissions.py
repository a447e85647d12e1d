"""Admin roles: staff with view-only rights on the MCOM section."""

from __future__ import annotations

from typing import Any


def make_read_only(user: Any) -> None:
    """Give ``user`` the read-only MCOM role (filled by the admin module)."""
