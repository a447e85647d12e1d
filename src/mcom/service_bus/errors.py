"""Errors a handler, sender or the OMS client raises, saying whether a retry makes sense.

Tree::

    MessageError                      (.retryable)
    ├── RetryLater                    transient (entity unknown yet, …): retried with backoff
    ├── PermanentError                parked as ``error`` at once
    │   └── InvalidPayload            params do not match what the handler needs
    └── OmsError                      a call to the OMS / bus failed (.method names the call)
        ├── OmsUnavailable            network, timeout, HTTP 408/429/5xx            retryable
        ├── OmsAuthError              OAuth refused / 401 after one token refresh    retryable (*)
        ├── OmsUnknownOutcome         2xx that is no readable success (see below)    retryable (**)
        ├── OmsRejected               any other HTTP 4xx answer                      permanent
        └── OmsRpcError(code)         a JSON-RPC error object in the answer
            └── OmsMethodNotRouted    HTTP 404 / -32601 / "handler not found"        permanent

JSON-RPC codes -32700/-32600/-32601/-32602 are permanent (the same request can never succeed),
and so is a server error (-32000…-32099) whose message says the method has no handler
(:func:`names_missing_handler`); every other code (-32603 internal error, other server errors,
application codes) is retryable. A JSON-RPC error in an HTTP 4xx answer (other than 401/408/429)
is permanent. (*) An auth failure is a configuration problem, not a property of the message: the
message is retried with backoff so that it goes out once the operator fixes the credentials.
(**) An unknown outcome (HTTP 2xx with an empty or unparseable body, or a JSON-RPC envelope with
neither ``result`` nor ``error``) may or may not have been acted on by the OMS: it is never
recorded as delivered; the message is sent again with the same id, and parked with the reason
after ``[queue] max_attempts``.

The whole table lives in :func:`mcom.service_bus.client.interpret`.
"""

from __future__ import annotations

import re
from typing import Any


class MessageError(Exception):
    """Base class. ``retryable`` tells the worker whether another attempt can succeed."""

    retryable: bool = False


class TimeLimitExceeded(BaseException):
    """Raised inside a handler/sender that runs longer than ``[queue] message_time_limit``.

    A ``BaseException`` so that a handler's broad ``except Exception`` does not swallow it.
    """


class RetryLater(MessageError):
    """Transient: the entity is not known yet, the OMS is down, a timeout… Retried with backoff."""

    retryable = True


class PermanentError(MessageError):
    """Cannot succeed by retrying (bad payload, validation): parked as ``error`` at once."""

    retryable = False


class InvalidPayload(PermanentError):
    """The message params do not match what the handler needs."""


PERMANENT_RPC_CODES = frozenset({-32700, -32600, -32601, -32602})

_MISSING_HANDLER = re.compile(
    r"handler\s+(?:was\s+)?not\s+found|no\s+(?:such|valid)\s+(?:method|handler)|method\s+not\s+found"
    r"|unknown\s+method|no\s+handler|not\s+routed",
    re.IGNORECASE,
)


def names_missing_handler(message: str) -> bool:
    """Whether an error message says the peer has no handler for the method ("Handler not found", …)."""
    return bool(_MISSING_HANDLER.search(message))


class OmsError(MessageError):
    """A call to the OMS or the bus failed. ``str()`` is one line and never contains a secret."""

    retryable = True

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}" if method else message)
        self.method = method
        self.detail = message


class OmsUnavailable(OmsError):
    """Network failure, timeout or HTTP 408/429/5xx: retry later."""

    retryable = True


class OmsAuthError(OmsError):
    """The OAuth server refused our credentials, or the bus refused a fresh token (HTTP 401)."""

    retryable = True


class OmsUnknownOutcome(OmsError):
    """HTTP 2xx whose body is no readable success: the OMS may or may not have acted. Retried with
    the same message id (the OMS ignores duplicates), parked with the reason after max attempts."""

    retryable = True


class OmsRejected(OmsError):
    """An HTTP 4xx answer (other than 401/404/408/429) without a JSON-RPC error: permanent."""

    retryable = False

    def __init__(self, method: str, message: str, *, status: int) -> None:
        super().__init__(method, message)
        self.status = status


class OmsRpcError(OmsError):
    """The peer answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(method, f"JSON-RPC error {code}: {message}")
        self.code = code
        self.rpc_message = message
        self.data = data
        self.retryable = code not in PERMANENT_RPC_CODES


class OmsMethodNotRouted(OmsRpcError):
    """HTTP 404 (mom-mock) or -32601: the bus does not route this method."""

    def __init__(self, method: str, message: str = "method not routed by the bus") -> None:
        super().__init__(method, -32601, message)
        self.retryable = False
