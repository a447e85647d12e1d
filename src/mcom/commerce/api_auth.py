"""Authentication of the REST API: a bearer token (``ApiToken``) or HTTP Basic with an admin user.

``auth`` is the list every route uses by default (the ``NinjaAPI`` is built with it); routers of
other modules inherit it. Writes additionally call :func:`require_write`: a token may write; an
admin user may write unless it is a read-only (view-permission only) staff member.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.contrib.auth import authenticate
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthorizationError
from ninja.security import HttpBasicAuth, HttpBearer

from mcom.commerce import tokens
from mcom.commerce.models import ApiToken

log = logging.getLogger("mcom.security")

WRITE_PERMISSIONS = ("commerce.add_order", "commerce.change_order", "commerce.change_product")
LOCKED_OUT = "too many failed logins; try again later"


class LoginLimitBackend(AxesStandaloneBackend):  # type: ignore[misc]  # django-axes ships no type hints
    """django-axes' lockout check for logins made with a request (admin login, REST Basic auth).

    ``authenticate()`` without a request (the Django test client, scripts) is not an HTTP login
    attempt and is left to the model backend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return
        super().authenticate(request, username=username, password=password, **kwargs)
        return


def lockout_response(request: HttpRequest, *args: Any) -> HttpResponse:
    """The answer while a username/address is locked out: 429 (JSON on the REST API)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": LOCKED_OUT}, status=429)
    return HttpResponse(f"Locked out: {LOCKED_OUT}.", status=429, content_type="text/plain; charset=utf-8")


@receiver(user_locked_out)
def _log_lockout(sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    # never the attempted password
    log.warning("login locked out after repeated failures: username %r from %s (%s)",
                (username or "")[:150], ip_address or "?", request.path[:200])


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
