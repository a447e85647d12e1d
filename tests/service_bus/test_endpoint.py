"""The inbound endpoint over real HTTP (the served fast ASGI path), and the Django view."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mcom.service_bus import signing, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import SECRET, deliver, envelope


@pytest.fixture
def live(connector: Any, secured: Any, effects: Any) -> Any:
    return connector


def _rows() -> list[LoggedMessage]:
    return list(LoggedMessage.objects.filter(direction="in").order_by("id"))


def test_options_probe(live: Any) -> None:
    r = httpx.options(live.url + "/mcom/service-bus")
    assert r.status_code == 200
    assert r.headers["x-magento-service-bus"] == "*"


def test_signed_delivery_is_stored_acknowledged_and_processed(live: Any, effects: Any) -> None:
    body = envelope(effects.COUNT, {"entity": "o1", "n": 7}, id="msg-1")
    r = deliver(live.url, body)
    assert r.status_code == 200
    assert r.json() == {"jsonrpc": "2.0", "id": "msg-1", "result": {}}
    (row,) = _rows()
    assert (row.topic, row.message_id, row.status, row.entity_key) == (effects.COUNT, "msg-1", "new", "test:o1")
    assert row.payload == body.decode()
    assert effects.effects() == []  # nothing processed synchronously
    assert worker.run_until_idle() == 1
    row.refresh_from_db()
    assert row.status == "complete"
    assert json.loads(row.result) == {"counted": 7}
    assert effects.effects() == [(row.pk, "o1", 7)]


def test_php_encoded_body_is_verified_on_raw_bytes(live: Any, effects: Any) -> None:
    raw = '{"id":"p1","method":"METHOD","params":{"entity":"a\\/b","n":1,"name":"\\u003Cb\\u003E\\u00e9"},"client":"FAKE"}'
    body = raw.replace("METHOD", effects.COUNT).encode()
    r = deliver(live.url, body)  # no jsonrpc member, extra member, PHP escapes
    assert r.status_code == 200
    assert r.json()["result"] == {}
    assert _rows()[0].entity_key == "test:a/b"


@pytest.mark.parametrize("signature", [None, "sha1=" + "0" * 40, "SHA1=abc", ""])
def test_bad_or_missing_signature_is_401_and_nothing_stored(live: Any, effects: Any, signature: Any) -> None:
    body = envelope(effects.COUNT, {"entity": "o1"})
    if signature is None:
        r = deliver(live.url, body, secret=None)
    else:
        r = deliver(live.url, body, signature=signature)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == -32001
    assert _rows() == []


def test_tampered_body_is_rejected(live: Any, effects: Any) -> None:
    body = envelope(effects.COUNT, {"entity": "o1", "n": 1})
    r = deliver(live.url, body.replace(b'"n": 1', b'"n": 2'), signature=signing.sign(SECRET, body))
    assert r.status_code == 401
    assert _rows() == []


def test_signature_is_checked_before_parsing(live: Any) -> None:
    r = deliver(live.url, b"{not json", secret="wrong-secret")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, -32700),
        (b"\xff\xfe", 400, -32700),
        (b"[]", 400, -32600),
        (b'[{"jsonrpc":"2.0","id":1,"method":"mcom.test.count","params":{}}]', 400, -32600),
        (b'{"jsonrpc":"2.0","id":1,"params":{}}', 400, -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"mcom.test.count","params":{}}', 400, -32600),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"mcom.test.count","params":{}}', 400, -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"magento.nothing.here","params":{}}', 200, -32601),
        (b'{"jsonrpc":"2.0","id":1,"method":"mcom.test.count","params":[1,2]}', 200, -32602),
    ],
)
def test_invalid_deliveries_are_rejected_and_nothing_is_stored(live: Any, body: bytes, status: int, code: int) -> None:
    r = deliver(live.url, body)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert _rows() == []
    assert worker.run_until_idle() == 0


def test_disabled_module_method_is_not_found(live: Any, env: Any) -> None:
    from mcom.service_bus import methods, registry

    if registry.all_inbound().get(methods.STOCK_UPDATED) is None:
        pytest.skip("inventory handlers not registered yet")
    env(modules=["sales"])
    r = deliver(live.url, envelope(methods.STOCK_UPDATED, {"snapshot": {}}))
    assert r.json()["error"]["code"] == -32601
    assert _rows() == []


def test_duplicate_delivery_is_acknowledged_stored_and_processed_once(live: Any, effects: Any) -> None:
    body = envelope(effects.COUNT, {"entity": "o1", "n": 1}, id="dup-1")
    assert deliver(live.url, body).json()["result"] == {}
    assert deliver(live.url, body).json()["result"] == {}
    assert len(_rows()) == 1
    worker.run_until_idle()
    assert deliver(live.url, body).json()["result"] == {}  # also after processing
    worker.run_until_idle()
    assert len(_rows()) == 1
    assert len(effects.effects()) == 1


def test_same_id_with_another_body_is_a_new_message(live: Any, effects: Any) -> None:
    deliver(live.url, envelope(effects.COUNT, {"entity": "o1", "n": 1}, id=1))
    deliver(live.url, envelope(effects.COUNT, {"entity": "o1", "n": 2}, id=1))
    rows = _rows()
    assert len(rows) == 2
    assert rows[0].message_id == "1"
    assert rows[1].message_id.startswith("1#")


def test_entity_key_failure_uses_a_fallback_key(live: Any, effects: Any) -> None:
    r = deliver(live.url, envelope(effects.COUNT, {"no_entity": True}, id="k1"))
    assert r.json()["result"] == {}
    assert _rows()[0].entity_key == "unkeyed:k1"


def test_unsigned_accepted_when_endpoint_not_secure(live: Any, env: Any, effects: Any) -> None:
    env(service_bus__secure_endpoint=False)
    r = deliver(live.url, envelope(effects.COUNT, {"entity": "o1"}), secret=None)
    assert r.status_code == 200
    assert len(_rows()) == 1


def test_synchronous_query_is_answered_in_result(live: Any, effects: Any) -> None:
    r = deliver(live.url, envelope(effects.QUERY, {"order_id": "42"}, id="q1"))
    assert r.json() == {"jsonrpc": "2.0", "id": "q1", "result": [{"id": 1, "tracking_number": "TRACK-42"}]}
    (row,) = _rows()
    assert row.status == "complete"
    assert json.loads(row.result)[0]["tracking_number"] == "TRACK-42"
    r = deliver(live.url, envelope(effects.QUERY, {"explode": True}, id="q2"))
    assert r.json()["error"]["code"] == -32000
    assert LoggedMessage.objects.get(message_id="q2").status == "error"


def test_django_view_behaves_the_same(db: None, client: Any, secured: Any, effects: Any) -> None:
    body = envelope(effects.COUNT, {"entity": "o9", "n": 1}, id="v1")
    sig = signing.sign(SECRET, body)
    r = client.post("/mcom/service-bus", body, content_type="application/json", headers={"X-Signature": sig})
    assert r.status_code == 200
    assert r.json()["result"] == {}
    r = client.post("/mcom/service-bus", body, content_type="application/json", headers={"X-Signature": sig})
    assert LoggedMessage.objects.filter(message_id="v1").count() == 1
    r = client.post("/mcom/service-bus", body, content_type="application/json")
    assert r.status_code == 401
    r = client.options("/mcom/service-bus")
    assert r.status_code == 200
    assert r["X-Magento-Service-Bus"] == "*"


def test_cannot_persist_answers_503(live: Any, effects: Any) -> None:
    from mcom.service_bus import ingest

    class Broken:
        def write(self, rows: Any) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            pass

    ingest.close_writers()
    ingest._Writers.writer = ingest.GroupCommitWriter(Broken())  # type: ignore[arg-type]
    r = deliver(live.url, envelope(effects.COUNT, {"entity": "o1"}))
    assert r.status_code == 503
    assert _rows() == []
