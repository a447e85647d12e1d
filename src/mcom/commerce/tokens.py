"""REST API tokens: random, shown once, stored as SHA-256 (``ApiToken``)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from mcom.commerce.models import ApiToken

TOKEN_PREFIX = "mcom_"
_TOUCH_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token cannot be created or revoked; the message is one line."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(*, name: str) -> tuple[ApiToken, str]:
    """Create a token named ``name``; returns the row and the clear token (never stored).

    Raises :class:`TokenError` when the name is empty or taken.
    """
    name = name.strip()
    if not name:
        raise TokenError("--name must not be empty")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            row = ApiToken.objects.create(name=name, token_hash=hash_token(token), prefix=token[:12])
    except IntegrityError:
        raise TokenError(f"a token named {name!r} already exists") from None
    return row, token


def revoke_token(*, name: str) -> None:
    """Deactivate the token named ``name``; raises :class:`TokenError` if there is none."""
    if not ApiToken.objects.filter(name=name).update(is_active=False):
        raise TokenError(f"no token named {name!r}")


def verify_token(token: str) -> ApiToken | None:
    """The active token matching ``token`` (its last use is recorded, at most once a minute)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = ApiToken.objects.filter(token_hash=hash_token(token), is_active=True).first()
    if row is not None:
        now = timezone.now()
        if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
            row.last_used_at = now
    return row
