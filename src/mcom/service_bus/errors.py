"""Errors a handler or sender raises, saying whether a retry makes sense."""

from __future__ import annotations


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
