"""Errors a handler, sender or the OMS client raises, saying whether a retry makes sense.

Tree::

    MessageError                      (.retryable)
    ├── RetryLater                    transient (entity unknown yet, …): retried with backoff
    ├── PermanentError                parked as ``error`` at once
    │   └── InvalidPayload            params do not match what the handler needs
    └── OmsError                      a call to the OMS / bus failed (.method names the call)
        ├── OmsUnavailable            network, timeout, HTTP 408/429/5xx            retryable
        ├── OmsAuthError              OAuth refused / 401 after one token refresh    retryable (*)
        ├── OmsRejected               any other HTTP 4xx answer                      permanent
        └── OmsRpcError(code)         a JSON-RPC error object in the answer
            └── OmsMethodNotRouted    HTTP 404 / -32601: the bus does not route it   permanent

JSON-RPC codes -32700/-32600/-32601/-32602 are permanent (the same request can never succeed);
every other code (-32603 internal error, -32000…-32099 server errors, application codes) is
retryable. (*) An auth failure is a configuration problem, not a property of the message: the
message is retried with backoff so that it goes out once the operator fixes the credentials.
"""

from __future__ import annotations

from typing import Any


class MessageError(Exception):
    """Base class. ``retryable`` tells the worker whether another attempt can succeed."""

    retryable: bool = False


class RetryLater(MessageError):
    """Transient: the entity is not known yet, the OMS is down, a timeout… Retried with backoff."""

    retryable = True


class PermanentError(MessageError):
    """Cannot succeed by retrying (bad payload, validation): parked as ``error`` at once."""

    retryable = False


class InvalidPayload(PermanentError):
    """The message params do not match what the handler needs."""


PERMANENT_RPC_CODES = frozenset({-32700, -32600, -32601, -32602})


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
