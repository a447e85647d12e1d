"""OAuth 2.0 client credentials for connector → bus calls (oms-protocol.md §4, §12 #6).

:class:`ClientCredentialsAuth` is an ``httpx.Auth``: it adds ``Authorization: Bearer <token>``,
fetches the token from ``{oauth_server_url}oauth/token`` (form body ``grant_type``,
``client_id``, ``client_secret``; HTTP 200 or 201), caches it until shortly before it expires
(``expires_in``, else the configured TTL) and, when the bus answers 401, fetches a new token once
and retries the call.

The cache is shared by the threads of a process (a lock: one fetch at a time) and by the
processes of an instance (``var/oauth-token-<hash>.json``, mode 0600, written atomically), so web
workers and the cron worker do not each fetch their own token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import httpx

from mcom.service_bus.errors import OmsAuthError, OmsUnavailable

log = logging.getLogger("mcom.service_bus.oauth")

#: refresh this long before the token expires (capped at a tenth of its lifetime)
EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: float  # epoch seconds

    def fresh(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) < self.expires_at


class TokenFileCache:
    """A token shared by the processes of one instance: a 0600 JSON file under ``var/``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Token | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Token(str(data["access_token"]), float(data["expires_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, token: Token) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"access_token": token.access_token, "expires_at": token.expires_at}, fh)
            os.replace(tmp, self.path)
        except OSError as e:  # a read-only var/ only costs extra token fetches
            log.warning("cannot write the OAuth token cache %s: %s", self.path, e.strerror)

    def discard(self, token: Token) -> None:
        """Remove the cached token if it is still ``token`` (another process may have refreshed)."""
        current = self.load()
        if current is not None and current.access_token == token.access_token:
            with contextlib.suppress(OSError):
                self.path.unlink()


def cache_file_for(var_dir: Path, token_url: str, client_id: str) -> Path:
    digest = hashlib.sha256(f"{token_url}\n{client_id}".encode()).hexdigest()[:16]
    return var_dir / f"oauth-token-{digest}.json"


class ClientCredentialsAuth(httpx.Auth):
    """``httpx.Auth`` implementing the client-credentials grant with a shared token cache.

    Raises :class:`OmsAuthError` (one line naming the OAuth server URL, never the secret) when
    the credentials are refused, :class:`OmsUnavailable` when the token answer is unusable
    (5xx, not JSON, no ``access_token``). Network errors of the token request surface from
    the httpx client as ``httpx.TransportError``.
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        oauth_server_url: str,
        client_id: str,
        client_secret: str,
        default_ttl: float = 3600.0,
        file_cache: TokenFileCache | None = None,
    ) -> None:
        base = oauth_server_url if oauth_server_url.endswith("/") else oauth_server_url + "/"
        self.token_url = base + "oauth/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._default_ttl = default_ttl
        self._file = file_cache
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.fetch_count = 0  # observability for tests/admin: tokens fetched by this process

    # -------------------------------------------------------------------------- token state

    def _cached(self) -> Token | None:
        if self._token is not None and self._token.fresh():
            return self._token
        if self._file is not None:
            tok = self._file.load()
            if tok is not None and tok.fresh():
                self._token = tok
                return tok
        return None

    def invalidate(self, token: Token | None = None) -> None:
        """Forget ``token`` (or the current one) here and in the shared file."""
        token = token or self._token
        if token is None:
            return
        if self._token is not None and self._token.access_token == token.access_token:
            self._token = None
        if self._file is not None:
            self._file.discard(token)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            headers={"Accept": "application/json"},
        )

    def _parse_token(self, response: httpx.Response) -> Token:
        status = response.status_code
        if status in (400, 401, 403):
            raise OmsAuthError(
                "oauth/token",
                f"the OAuth server {self.token_url} refused the client credentials (HTTP {status}); "
                "check service_bus.oauth_client_id and service_bus.oauth_client_secret",
            )
        if status not in (200, 201):
            raise OmsUnavailable("oauth/token", f"the OAuth server {self.token_url} answered HTTP {status}")
        try:
            data = response.json()
        except ValueError:
            raise OmsUnavailable("oauth/token", f"the OAuth server {self.token_url} answered no JSON") from None
        access = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not access:
            raise OmsUnavailable("oauth/token", f"the OAuth server {self.token_url} answered without access_token")
        ttl: float = self._default_ttl
        expires_in = data.get("expires_in")
        if isinstance(expires_in, (int, float, str)):
            with contextlib.suppress(ValueError):
                ttl = float(expires_in)
        margin = min(EXPIRY_MARGIN_SECONDS, ttl / 10)
        token = Token(access, time.time() + max(ttl - margin, 1.0))
        self._token = token
        self.fetch_count += 1
        if self._file is not None:
            self._file.store(token)
        log.info("fetched an OAuth token from %s (valid %.0f s)", self.token_url, ttl)
        return token

    # ------------------------------------------------------------------------------- flows

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # The lock makes concurrent threads wait for one fetch instead of each fetching a token.
        with self._lock:
            token = self._cached()
            if token is None:
                resp = yield self._token_request()
                resp.read()
                token = self._parse_token(resp)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        with self._lock:
            if self._token is None or self._token.access_token == token.access_token:
                self.invalidate(token)
                resp = yield self._token_request()
                resp.read()
                token = self._parse_token(resp)
            else:  # another thread refreshed meanwhile
                token = self._token
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def,override]
        raise NotImplementedError("ClientCredentialsAuth is for the synchronous httpx.Client")
