"""Hypothesis against the inbound endpoint over real HTTP: random bytes, huge and deep bodies,
wrong types in every field of every accepted topic (signed and unsigned), and batches mixing
valid and poison deliveries. Every answer is < 500 and valid JSON; every valid delivery of a
mixed batch is stored; the worker then processes what was stored without crashing.

CI runs a bounded number of cases; ``MCOM_FUZZ_EXAMPLES=2000`` runs more per test. Each test
prints how many cases it sent.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcom.service_bus import methods, registry, signing, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import SECRET, examples

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            "database": None}

# One plausible params object per accepted topic (shapes of the protocol notes); the fuzzer
# replaces each field, at every depth, by a value of another type.
SAMPLES: dict[str, dict[str, Any]] = {
    methods.ORDER_CREATED: {"order": {"id": "000000001", "status": "NEW"}},
    methods.ORDER_UPDATED: {"order": {
        "id": "000000001", "status": "logistics", "status_reason": "READYTOSHIP", "status_date": "2026-01-01T10:00:00+00:00",
        "lines": [{"id": "1", "status": "SHIPPED", "status_reason": "OSREPORT", "quantity": 1,
                   "payments": [{"payment_reference": "p1", "status": "CAPTURE_REQUESTED"}]}],
    }},
    methods.SHIPMENT_DONE: {"shipment": {
        "shipment_id": "S1", "order_id": "000000001", "source_id": "WH1", "method": "STANDARD",
        "shipment_date": "2026-01-01 10:00:00+00:00",
        "items": [{"id": "1", "sku": "SKU-A", "quantity": 1, "status": "SHIPPED"}],
        "packages": [{"id": "1", "carrier": "DHL", "tracking_number": "T1", "tracking_link": "https://t/1",
                      "items": [1], "aggregated_items": [{"sku": "SKU-A", "quantity": 1}]}],
    }},
    methods.REQUEST_SHIPMENT: {"request_id": "R1", "sales_channel": "web", "order_id": "000000001", "source_id": "WH1",
                               "items": [{"id": "1", "sku": "SKU-A", "quantity": 1}]},
    methods.REQUEST_SHIPPING_DETAILS: {"shipment": {
        "order_id": "000000001", "source_id": "WH1", "items": [{"id": "1", "sku": "SKU-A", "quantity": 1}],
        "packages": [{"id": "1", "carrier": "DHL", "items": ["1"]}],
    }},
    methods.STOCK_UPDATED: {"snapshot": {"aggregate_id": "agg", "created_on": "2026-01-01 10:00:00", "mode": "DELTA",
                                         "stock": [{"sku": "SKU-A", "quantity": "5", "unlimited": False}]}},
    methods.RETURN_UPDATED: {"return": {"rma": "RMA1", "order_id": "000000001",
                                        "status": {"code": "APPROVED", "name": "APPROVED", "date": "2026-01-01T10:00:00Z"},
                                        "lines": [{"id": "1", "sku": "SKU-A", "status": "APPROVED"}]}},
    methods.REFUND_UPDATED: {"refund": {"rma": "RMA1", "order_id": "000000001", "credit_note_number": "CDE1",
                                        "credit_note_date": "2026-01-01T10:00:00Z",
                                        "status": {"code": "RELEASED", "name": "RELEASED"},
                                        "lines": [{"order_item_id": "1", "sku": "SKU-A", "payments": []}]}},
}

COUNTS: Counter[str] = Counter()
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))  # keep-alive: cases, not handshakes


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


FIELDS = [(topic, path) for topic, sample in SAMPLES.items() for path in _paths(sample)]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40), st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "", " ", "1e400", "NaN"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                      max_leaves=12)


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _dumps(doc: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \\udxxx escapes, as a hostile peer would send them
    return json.dumps(doc).encode()


def _post(url: str, body: bytes, *, signed: bool = True, signature: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Signature"] = signature
    elif signed:
        headers["X-Signature"] = signing.sign(SECRET, body)
    return HTTP.post(url + "/mcom/service-bus", content=body, headers=headers)


def _strict(r: httpx.Response) -> dict[str, Any]:
    """The answer is valid JSON (no NaN/Infinity) and a JSON-RPC envelope."""
    def bad(name: str) -> Any:
        raise AssertionError(f"invalid JSON constant {name} in {r.content[:200]!r}")

    doc = json.loads(r.content, parse_constant=bad)
    assert isinstance(doc, dict), doc
    assert doc.get("jsonrpc") == "2.0", doc
    assert "result" in doc or "error" in doc, doc
    return doc


def _check(r: httpx.Response, name: str) -> dict[str, Any]:
    COUNTS[name] += 1
    assert r.status_code < 500, (r.status_code, r.content[:300])
    return _strict(r)


@pytest.fixture
def fuzz_live(connector: Any, secured: Any) -> Any:
    registry.inbound_route(methods.ORDER_UPDATED)  # the real routes of the enabled modules
    return connector


def _report(name: str) -> None:
    print(f"\n[fuzz] {name}: {COUNTS[name]} cases, 0 answers >= 500")


@settings(max_examples=examples(300), **SETTINGS)
@given(body=st.binary(max_size=2048), signed=st.booleans())
def test_random_bytes(fuzz_live: Any, body: bytes, signed: bool) -> None:
    r = _check(_post(fuzz_live.url, body, signed=signed), "random bytes")
    assert r["error"]["code"] in (-32700, -32600, -32601, -32602, -32001)
    assert r["id"] is None


@settings(max_examples=examples(100), **SETTINGS)
@given(depth=st.integers(min_value=1, max_value=20_000), kind=st.sampled_from(["[", '{"a":']),
       where=st.sampled_from(["params", "id", "root"]))
def test_deep_bodies(fuzz_live: Any, depth: int, kind: str, where: str) -> None:
    close = "]" if kind == "[" else "}"
    nested = kind * depth + "1" + close * depth
    text = {
        "params": '{"jsonrpc":"2.0","id":"d","method":"' + methods.ORDER_UPDATED + '","params":{"order":' + nested + "}}",
        "id": '{"jsonrpc":"2.0","id":' + nested + ',"method":"x"}',
        "root": nested,
    }[where]
    r = _check(_post(fuzz_live.url, text.encode()), "deep bodies")
    if depth > 64:
        assert "error" in r


def test_huge_bodies(fuzz_live: Any, env: Any) -> None:
    env(service_bus__max_body_bytes=4 * 1024 * 1024)
    cases = [
        b'{"jsonrpc":"2.0","id":"h","method":"%s","params":{"order":{"id":"%s"}}}' % (methods.ORDER_UPDATED.encode(), b"9" * (3 * 1024 * 1024)),
        b'{"jsonrpc":"2.0","id":"h2","method":"x","params":{}}' + b" " * (5 * 1024 * 1024),
        b"[" * (3 * 1024 * 1024),
    ]
    for body in cases:
        for signed in (True, False):
            _check(_post(fuzz_live.url, body, signed=signed), "huge bodies")
    _report("huge bodies")


@settings(max_examples=examples(600), **SETTINGS)
@given(field=st.sampled_from(FIELDS), value=values, signed=st.booleans(), msg_id=st.one_of(
    st.text(max_size=70), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.none()))
def test_wrong_types_in_every_field_of_every_topic(fuzz_live: Any, field: Any, value: Any, signed: bool, msg_id: Any) -> None:
    topic, path = field
    doc = {"jsonrpc": "2.0", "id": msg_id, "method": topic, "params": _set(SAMPLES[topic], path, value)}
    r = _check(_post(fuzz_live.url, _dumps(doc), signed=signed), "wrong types")
    if not signed:
        assert r["error"]["code"] == -32001


@settings(max_examples=examples(60), **SETTINGS)
@given(raw_id=st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", '"\\u0000"', '"\\ud800"', "1" * 5000, "[1]", "{}", "true"]),
       method=st.sampled_from([methods.ORDER_UPDATED, '"\\ud800"', "\\u0000"]))
def test_hostile_ids_are_never_echoed_as_invalid_json(fuzz_live: Any, raw_id: str, method: str) -> None:
    m = method if method.startswith('"') else json.dumps(method.replace("\\u0000", "\x00"))
    text = '{"jsonrpc":"2.0","id":' + raw_id + ',"method":' + m + ',"params":{"order":{"id":"1"}}}'
    _check(_post(fuzz_live.url, text.encode()), "hostile ids")


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


POISON = [
    {"order": {"id": "a\x00b"}}, {"order": {"id": "\ud800"}}, {"order": {"id": "1", "x": _deep(80)}},
]


@settings(max_examples=examples(10), **SETTINGS)
@given(valid=st.integers(min_value=5, max_value=40), poison=st.integers(min_value=1, max_value=20), seed=st.integers(0, 2))
def test_mixed_valid_and_poison_deliveries_in_one_batch(fuzz_live: Any, valid: int, poison: int, seed: int) -> None:
    run = uuid.uuid4().hex[:8]
    bodies: list[tuple[bool, bytes]] = []
    for i in range(valid):
        bodies.append((True, _dumps({"jsonrpc": "2.0", "id": f"ok-{run}-{i}", "method": methods.ORDER_UPDATED,
                                     "params": {"order": {"id": f"9{i:08d}", "status": "NEW"}}})))
    for i in range(poison):
        bodies.append((False, _dumps({"jsonrpc": "2.0", "id": f"bad-{run}-{i}" if i % 2 else "\x00" + run + str(i),
                                      "method": methods.ORDER_UPDATED, "params": POISON[(i + seed) % len(POISON)]})))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def send(k: int) -> None:
        answers[k] = _post(fuzz_live.url, bodies[k][1])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for (ok, _), r in zip(bodies, answers, strict=True):
        assert r is not None
        doc = _check(r, "mixed batches")
        assert ("result" in doc) == ok, (ok, doc)
    stored = set(LoggedMessage.objects.filter(message_id__startswith=f"ok-{run}-").values_list("message_id", flat=True))
    assert stored == {f"ok-{run}-{i}" for i in range(valid)}
    assert not LoggedMessage.objects.filter(message_id__contains=f"bad-{run}").exists()


def test_the_worker_survives_what_was_stored(fuzz_live: Any) -> None:
    """Everything the fuzzer got stored (wrong types included) is processed or parked, never crashes a pass."""
    for topic, sample in SAMPLES.items():
        for path in _paths(sample):
            for value in (None, {}, -1.5, "\u00e9", 10**20):
                _post(fuzz_live.url, _dumps({"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": topic,
                                              "params": _set(sample, path, value)}))
                COUNTS["stored then processed"] += 1
    worker.run_until_idle(max_seconds=120)
    rows = LoggedMessage.objects.filter(direction="in")
    assert not rows.filter(status=LoggedMessage.PROCESSING).exists()  # nothing left claimed
    first_held: dict[str, int] = {}
    for m in rows.filter(status__in=[LoggedMessage.ERROR, LoggedMessage.RETRY]).order_by("id"):
        first_held.setdefault(m.entity_key, m.id)
    # what is still new waits behind an earlier parked/retried message of its entity (processing is ordered)
    for m in rows.filter(status=LoggedMessage.NEW):
        assert m.entity_key in first_held, (m.topic, m.entity_key, m.payload[:200])
        assert first_held[m.entity_key] < m.id, (m.topic, m.entity_key, m.payload[:200])
    _report("stored then processed")


@pytest.fixture(scope="module", autouse=True)
def _print_counts() -> Any:
    yield
    for name, n in sorted(COUNTS.items()):
        print(f"\n[fuzz] inbound endpoint — {name}: {n} cases, 0 answers >= 500")
    print(f"\n[fuzz] inbound endpoint total: {sum(COUNTS.values())} cases")
