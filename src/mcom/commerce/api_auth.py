"""Authentication of the REST API: a bearer token (``ApiToken``) or HTTP Basic with an admin user.

``auth`` is the list every route uses by default (the ``NinjaAPI`` is built with it); routers of
other modules inherit it. Writes additionally call :func:`require_write`: a token may write; an
admin user may write unless it is a read-only (view-permission only) staff member.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja.errors import AuthorizationError
from ninja.security import HttpBasicAuth, HttpBearer

from mcom.commerce import tokens
from mcom.commerce.models import ApiToken

WRITE_PERMISSIONS = ("commerce.add_order", "commerce.change_order", "commerce.change_product")


class TokenAuth(HttpBearer):
    """``Authorization: Bearer mcom_…`` — tokens from ``mcom api:token:create``."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return tokens.verify_token(token.strip())


class AdminBasicAuth(HttpBasicAuth):
    """``Authorization: Basic …`` with the credentials of an active staff user."""

    def authenticate(self, request: HttpRequest, username: str, password: str) -> Any:
        user = authenticate(request, username=username, password=password)
        if user is not None and user.is_active and user.is_staff:
            return user
        return None


token_auth = TokenAuth()
basic_auth = AdminBasicAuth()
auth = [token_auth, basic_auth]


def require_write(request: HttpRequest) -> None:
    """Raise 403 when the authenticated principal may only read."""
    principal = getattr(request, "auth", None)
    if isinstance(principal, ApiToken):
        return
    if principal is not None and (
        principal.is_superuser or any(principal.has_perm(p) for p in WRITE_PERMISSIONS)
    ):
        return
    raise AuthorizationError(message="this user may not change data")
