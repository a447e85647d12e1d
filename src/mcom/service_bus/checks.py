"""Django system checks for dangerous service-bus settings (``mcom serve`` / ``manage check``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning, register

from mcom import envconfig


@register(Tags.security)
def service_bus_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Warn about settings that weaken the inbound endpoint's trust in production."""
    try:
        cfg = envconfig.current()
    except envconfig.ConfigError:  # reported by the command that loads the config
        return []
    out: list[CheckMessage] = []
    sb = cfg.service_bus
    secret = sb.secret.get_secret_value()
    if cfg.mode == "production" and not sb.secure_endpoint:
        out.append(Warning(
            "service_bus.secure_endpoint is false in production mode: unsigned deliveries are accepted",
            hint="Set secure_endpoint = true (the default); false is for development peers only.",
            id="mcom.W001",
        ))
    if secret and len(secret) < envconfig.MIN_SECRET_LENGTH:
        out.append(Warning(
            f"service_bus.secret is shorter than {envconfig.MIN_SECRET_LENGTH} characters",
            hint="Use a random secret of at least 32 characters.",
            id="mcom.W002",
        ))
    if cfg.mode == "production" and sb.url.startswith("http://") and not envconfig._is_loopback_or_dev(
        sb.url.split("/")[2].split(":")[0]
    ):
        out.append(Warning(
            "service_bus.url uses plain http in production mode",
            hint="Use the OMS's https URL.",
            id="mcom.W003",
        ))
    return out
