"""Fixtures of the service-bus tests: test routes, a fake bus over HTTP, signed deliveries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mcom import instance
from mcom.service_bus import client as bus_client
from mcom.service_bus import signing

from . import bus_handlers
from .fakebus import CLIENT_ID, CLIENT_SECRET, FakeBus

SECRET = "test-delivery-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_client_and_writer() -> Iterator[None]:
    yield
    from mcom.service_bus import ingest, worker

    bus_client.reset_client()
    ingest.close_writers()
    worker.clear_stop()


@pytest.fixture
def routes() -> Iterator[Any]:
    """The test-only inbound/outbound routes of :mod:`bus_handlers`."""
    bus_handlers.install()
    yield bus_handlers
    bus_handlers.uninstall()


@pytest.fixture
def effects(routes: Any) -> Any:
    """The ``bus_test_effect`` table, empty (needs DB access)."""
    bus_handlers.create_effect_table()
    return bus_handlers


@pytest.fixture
def queue_fast(env: Any) -> Any:
    """Retries without waiting (backoff 0) and few attempts."""
    return env(queue__backoff_base_seconds=0, queue__max_attempts=3)


@pytest.fixture
def secured(env: Any) -> Any:
    return env(service_bus__secret=SECRET, service_bus__secure_endpoint=True)


@pytest.fixture
def bus(env: Any) -> Iterator[FakeBus]:
    """A fake bus on loopback, with the connector's ``[service_bus]`` pointing at it."""
    for f in instance.var_dir().glob("oauth-token-*.json"):
        f.unlink()
    with FakeBus() as fake:
        env(
            service_bus__url=fake.url,
            service_bus__oauth_server_url=fake.url,
            service_bus__oauth_client_id=CLIENT_ID,
            service_bus__oauth_client_secret=CLIENT_SECRET,
            service_bus__secret=SECRET,
            service_bus__application_base_url="http://127.0.0.1:9/shop",
        )
        bus_client.reset_client()
        yield fake
    bus_client.reset_client()


def envelope(method: str, params: Any, *, id: Any = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "id": id if id is not None else str(uuid.uuid4()), "method": method, "params": params}
    doc.update(extra)
    return json.dumps(doc).encode()


def deliver(url: str, body: bytes, *, secret: str | None = SECRET, signature: str | None = None) -> httpx.Response:
    """POST a delivery to ``{url}/mcom/service-bus``, signed with ``secret`` unless ``signature`` is given."""
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    elif secret is not None:
        headers["X-Signature"] = signing.sign(secret, body)
    return httpx.post(url + "/mcom/service-bus", content=body, headers=headers, timeout=10)
