""" "Check connection" on the Integration page: fetch an OAuth token from the configured server.

A fresh :class:`~mcom.service_bus.oauth.ClientCredentialsAuth` without the shared token cache is
used, so the check really talks to the OAuth server and never replaces the worker's token. The
outcome names the server and the HTTP problem, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mcom import envconfig
from mcom.adminui.redact import redact
from mcom.service_bus.errors import OmsError
from mcom.service_bus.oauth import ClientCredentialsAuth


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def check_oauth() -> CheckResult:
    """Fetch a token with the configured client credentials; OK or a one-line reason."""
    try:
        sb = envconfig.current().require_service_bus()
    except envconfig.ConfigError as e:
        return CheckResult(False, str(e))
    auth = ClientCredentialsAuth(
        oauth_server_url=sb.oauth_server_url,
        client_id=sb.oauth_client_id,
        client_secret=sb.oauth_client_secret.get_secret_value(),
        default_ttl=float(sb.token_ttl),
        file_cache=None,
    )
    timeout = httpx.Timeout(sb.read_timeout, connect=sb.connect_timeout)
    # Drive the auth flow only up to the token: the first request it yields is the token request;
    # answering it makes the flow parse the token (raising on refusal) before it yields the bus call.
    flow = auth.sync_auth_flow(httpx.Request("GET", sb.url))
    try:
        with httpx.Client(timeout=timeout) as http:
            token_request = next(flow)
            response = http.send(token_request)
            response.read()
            flow.send(response)
    except OmsError as e:
        return CheckResult(False, redact(str(e)))
    except httpx.TransportError as e:
        return CheckResult(False, f"cannot reach the OAuth server {auth.token_url}: {type(e).__name__}")
    finally:
        flow.close()
    return CheckResult(
        True,
        f"Connection OK: the OAuth server {auth.token_url} issued a token for client “{sb.oauth_client_id}”.",
    )
