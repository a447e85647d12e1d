"""Registration with the bus (oms-protocol.md §6, §12 #3, #4, #21).

``register`` unregisters first (ignoring its failure: re-registering an existing id fails on
mom-mock), then sends ``magento.service_bus.remote.register`` with ``id``, ``url`` (the inbound
URL), ``secret``, the topics of the enabled modules under ``topics_key`` (default
``subscribes``) and ``labels`` (when configured). Every attempt is recorded as a
:class:`Registration` row — without the secret.
"""

from __future__ import annotations

import logging

from mcom import envconfig
from mcom.service_bus import methods, registry
from mcom.service_bus.endpoint import PATH
from mcom.service_bus.errors import OmsError
from mcom.service_bus.models import Registration

log = logging.getLogger("mcom.service_bus.registration")


class RegistrationError(Exception):
    """Registration failed; ``str()`` is one line without secrets."""


def inbound_url() -> str:
    """The URL the bus delivers to: ``application_base_url`` or store ``web/base_url``, + ``/mcom/service-bus``.

    Raises :class:`RegistrationError` when neither is set.
    """
    base = envconfig.current().service_bus.application_base_url
    if not base:
        from mcom.commerce import config

        base = str(config.get("web/base_url") or "")
    if not base:
        raise RegistrationError(
            "no inbound URL: set service_bus.application_base_url in env.toml or web/base_url (config:set)"
        )
    return base.rstrip("/") + PATH


def payload(sb: envconfig.ServiceBusConfig, url: str, topics: list[str]) -> dict[str, object]:
    """The register params (contains the secret: never log or store this dict)."""
    params: dict[str, object] = {
        "id": sb.application_id,
        "url": url,
        "secret": sb.secret.get_secret_value(),
        sb.topics_key: topics,
    }
    if sb.labels:
        params["labels"] = dict(sb.labels)
    return params


def register(*, source: str) -> Registration:
    """Register this connector with the bus now; returns the recorded ``Registration`` (ok).

    Raises :class:`RegistrationError` (after recording the failed attempt) when the config is
    incomplete, the inbound URL is unknown or the bus refuses/cannot be reached.
    """
    sb = envconfig.current().service_bus
    envconfig.warn_short_secret(sb.secret.get_secret_value())
    topics = registry.topics()
    url = ""
    try:
        url = inbound_url()
        envconfig.current().require_service_bus()
        from mcom.service_bus.client import get_client

        client = get_client()
        try:
            client.bus(methods.UNREGISTER, {"id": sb.application_id})
        except OmsError as e:
            log.info("unregister before register failed (ignored): %s", e)
        client.bus(methods.REGISTER, payload(sb, url, topics))
    except (RegistrationError, envconfig.ConfigError, OmsError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        for secret in envconfig.current().secrets():
            message = message.replace(secret, "***")
        Registration.objects.create(
            application_id=sb.application_id, url=url, topics=topics, labels=dict(sb.labels), ok=False,
            error=message, source=source[:32],
        )
        log.warning("registration (%s) failed: %s", source, message)
        raise RegistrationError(message) from None
    reg = Registration.objects.create(
        application_id=sb.application_id, url=url, topics=topics, labels=dict(sb.labels), ok=True, source=source[:32]
    )
    log.info("registered %s at %s (%d topics, %s)", sb.application_id, url, len(topics), source)
    return reg


def latest() -> Registration | None:
    """The most recent registration attempt, if any."""
    return Registration.objects.order_by("-created_at", "-id").first()
