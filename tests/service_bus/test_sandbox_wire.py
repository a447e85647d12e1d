"""Registration against the sandbox OMS over real HTTP (the `wired` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from mcom.service_bus import registration, registry


@pytest.mark.django_db(transaction=True)
def test_registration_with_the_sandbox_is_recorded(wired: Any) -> None:
    last = registration.latest()
    assert last is not None, last.error if last else None
    assert last.ok, last.error if last else None
    assert last.url == wired.connector.url + "/mcom/service-bus"
    assert last.topics == registry.topics()
    # re-registering the same id works (unregister first, §12 #21)
    assert registration.register(source="test").ok
