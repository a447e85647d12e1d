"""The values of a new inbound row, importable before Django is set up (the ASGI ingest path).

The message log itself (:mod:`mcom.service_bus.log`) writes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class InboundRow:
    """The values of one inbound row (the rest are the defaults of a new message)."""

    topic: str
    message_id: str
    entity_key: str
    payload: str  # the exact received body (the whole envelope)


def variant_id(message_id: str, payload: str) -> str:
    """The id under which a *different* body re-using an already stored id is kept.

    Some bus versions send every delivery with the same id: same id + different body is a new
    message, not a re-delivery.
    """
    digest = hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - identity, not security
    return f"{message_id[:40]}#{digest}"
