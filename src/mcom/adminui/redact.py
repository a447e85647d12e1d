"""Redaction of configured secrets from anything the admin renders (payloads, errors, log lines)."""

from __future__ import annotations

from mcom import envconfig

MASK = "***"


def secrets() -> list[str]:
    try:
        return envconfig.current().secrets()
    except envconfig.ConfigError:
        return []


def redact(text: str, known: list[str] | None = None) -> str:
    """``text`` with every configured secret value replaced by ``***``."""
    for secret in secrets() if known is None else known:
        if secret:
            text = text.replace(secret, MASK)
    return text
