"""HMAC-SHA1 message signing (oms-protocol.md §5): ``X-Signature: sha1=<lowercase hex>``.

The signed bytes are the exact HTTP body; never re-serialize before verifying.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Signature"
PREFIX = "sha1="


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body``: ``sha1=`` + lowercase hex HMAC-SHA1."""
    return PREFIX + hmac.new(_key(secret), body, hashlib.sha1).hexdigest()


def verify(secret: str | bytes, body: bytes, header: str | bytes | None) -> bool:
    """True when ``header`` is the valid signature of ``body`` (constant-time comparison).

    The ``sha1=`` prefix is compared case-sensitively; a missing header or an empty secret is
    never valid.
    """
    if not header or not secret:
        return False
    verifier = Verifier(secret)
    verifier.update(body)
    return verifier.matches(header)


class Verifier:
    """The HMAC of a body computed while it streams in (``update`` per chunk, then ``matches``)."""

    def __init__(self, secret: str | bytes) -> None:
        self._empty = not secret
        self._mac = hmac.new(_key(secret), digestmod=hashlib.sha1)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def matches(self, header: str | bytes | None) -> bool:
        """Like :func:`verify` for the bytes fed so far (constant-time; empty secret never valid)."""
        if not header or self._empty:
            return False
        expected = (PREFIX + self._mac.hexdigest()).encode("ascii")
        given = header if isinstance(header, bytes) else header.encode("utf-8", "replace")
        return hmac.compare_digest(expected, given)
