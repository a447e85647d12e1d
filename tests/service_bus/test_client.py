"""The OAuth2 + JSON-RPC client against a real HTTP fake bus on loopback."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

from mcom.service_bus import client as bus_client
from mcom.service_bus import signing
from mcom.service_bus.errors import (
    OmsAuthError,
    OmsMethodNotRouted,
    OmsRejected,
    OmsRpcError,
    OmsUnavailable,
)

from .conftest import SECRET
from .fakebus import CLIENT_SECRET, FakeBus

M = "magento.inventory.source_repository.search"


def test_token_is_fetched_once_and_sent_as_bearer(bus: FakeBus) -> None:
    c = bus_client.get_client()
    assert c.call(M, {}) == []
    assert c.call(M, {}) == []
    tokens = [r for r in bus.requests if r.path == "/oauth/token"]
    assert len(tokens) == 1
    assert tokens[0].form == {"grant_type": "client_credentials", "client_id": "mcom-client", "client_secret": CLIENT_SECRET}
    assert all(r.headers["authorization"] == "Bearer token-1" for r in bus.rpc_requests())


def test_token_refreshed_once_on_401_and_call_retried(bus: FakeBus) -> None:
    c = bus_client.get_client()
    c.call(M, {})
    bus.valid_tokens.clear()  # the bus forgets the token: next call gets 401
    assert c.call(M, {"x": 1}) == []
    assert bus.tokens_issued == 2
    last_two = bus.rpc_requests()[-2:]
    assert [r.headers["authorization"] for r in last_two] == ["Bearer token-1", "Bearer token-2"]
    assert last_two[0].body == last_two[1].body  # the same request retried


def test_token_shared_across_clients_through_the_instance_cache(bus: FakeBus) -> None:
    bus_client.get_client().call(M, {})
    bus_client.reset_client()  # a new process would start like this
    bus_client.get_client().call(M, {})
    assert bus.tokens_issued == 1


def test_token_shared_by_threads(bus: FakeBus) -> None:
    c = bus_client.get_client()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            c.call(M, {})
        except BaseException as e:  # noqa: BLE001 - the thread hands any failure to the test  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert bus.tokens_issued == 1


def test_wrong_credentials_give_one_clear_error_without_the_secret(bus: FakeBus, env: Any) -> None:
    env(service_bus__oauth_client_secret="wrong-secret-value")
    with pytest.raises(OmsAuthError) as exc:
        bus_client.get_client().call(M, {})
    text = str(exc.value)
    assert bus.url + "oauth/token" in text
    assert "wrong-secret-value" not in text
    assert CLIENT_SECRET not in text
    assert "\n" not in text


def test_request_shape_ids_params_and_signature(bus: FakeBus) -> None:
    c = bus_client.get_client()
    c.delegate("magento.sales.order_management.create", {"order": {"id": "1"}})
    c.event("magento.catalog.product_management.updated", {"product": {"sku": "a"}})
    c.bus("magento.service_bus.remote.register", {"id": "mdc"})
    c.call(M, {})
    paths = [r.path for r in bus.rpc_requests()]
    assert paths == ["/delegate/oms", "/events", "/", "/remote/oms"]
    for r in bus.rpc_requests():
        doc = r.json
        assert doc["jsonrpc"] == "2.0"
        assert isinstance(doc["params"], dict)
        assert str(uuid.UUID(doc["id"], version=4)) == doc["id"]
        assert r.headers["x-signature"] == signing.sign(SECRET, r.body)
    with pytest.raises(ValueError, match="params must be an object"):
        c.call(M, [1, 2])  # type: ignore[arg-type]


def test_unsigned_when_sign_requests_is_off(bus: FakeBus, env: Any) -> None:
    env(service_bus__sign_requests=False)
    bus_client.get_client().call(M, {})
    assert "x-signature" not in bus.rpc_requests()[-1].headers


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"jsonrpc":"2.0","id":1,"result":[]}', []),
        (200, b'{"jsonrpc":"2.0","id":1,"result":{}}', {}),
        (200, b'{"jsonrpc":"2.0","id":1,"result":null}', None),
        (200, b'{"id":1,"result":null,"error":""}', None),
        (200, b"[]", []),
        (201, b'{"items":[1]}', {"items": [1]}),
        (200, b'{"jsonrpc":"2.0","id":"other","result":{"total":3}}', {"total": 3}),
    ],
)
def test_lenient_success_answers(bus: FakeBus, status: int, body: bytes, expected: Any) -> None:
    bus.answers[M] = (status, body)
    assert bus_client.get_client().call(M, {}) == expected


def test_error_answers_map_to_typed_exceptions(bus: FakeBus) -> None:
    c = bus_client.get_client()
    bus.answers[M] = (404, json.dumps(json.dumps({"error_message": "No valid method provided"})).encode())
    with pytest.raises(OmsMethodNotRouted) as e404:
        c.call(M, {})
    assert not e404.value.retryable
    assert e404.value.method == M

    bus.answers[M] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad params"}}')
    with pytest.raises(OmsRpcError) as bad:
        c.call(M, {})
    assert bad.value.code == -32602
    assert not bad.value.retryable
    assert M in str(bad.value)

    bus.answers[M] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"db down"}}')
    with pytest.raises(OmsRpcError) as server:
        c.call(M, {})
    assert server.value.retryable

    bus.answers[M] = (503, b"busy")
    with pytest.raises(OmsUnavailable) as unavailable:
        c.call(M, {})
    assert unavailable.value.retryable

    bus.answers[M] = (422, b"nope")
    with pytest.raises(OmsRejected) as rejected:
        c.call(M, {})
    assert rejected.value.status == 422
    assert not rejected.value.retryable


def test_unreachable_bus_is_retryable(bus: FakeBus, env: Any) -> None:
    from mcom.testing.live import free_port

    env(service_bus__url=f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(OmsUnavailable) as exc:
        bus_client.get_client().call(M, {})
    assert exc.value.retryable


def test_one_client_per_process_reset_on_config_change(bus: FakeBus, env: Any) -> None:
    a = bus_client.get_client()
    assert bus_client.get_client() is a
    env(service_bus__read_timeout=12)
    b = bus_client.get_client()
    assert b is not a
    assert b.http.timeout.read == 12
