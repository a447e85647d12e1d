"""The one table that classifies OMS answers (``client.interpret``): permanent, transient, unknown
outcome or success — row by row, on real ``httpx.Response`` objects."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mcom.service_bus.client import interpret
from mcom.service_bus.errors import (
    OmsAuthError,
    OmsError,
    OmsMethodNotRouted,
    OmsRejected,
    OmsRpcError,
    OmsUnavailable,
    OmsUnknownOutcome,
    names_missing_handler,
)

M = "magento.sales.order_management.create"


def answer(status: int, body: bytes | str) -> httpx.Response:
    return httpx.Response(status, content=body.encode() if isinstance(body, str) else body)


def rpc_error(code: int, message: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}})


PERMANENT = [
    (404, json.dumps(json.dumps({"error_message": "No valid method provided"})), OmsMethodNotRouted),
    (200, rpc_error(-32601, "Method not found"), OmsMethodNotRouted),
    (200, rpc_error(-32000, "Handler not found"), OmsMethodNotRouted),
    (200, rpc_error(-32099, "No such handler: magento.sales.order_management.create"), OmsMethodNotRouted),
    (200, rpc_error(-32602, "Invalid params: order.id"), OmsRpcError),
    (200, rpc_error(-32600, "Invalid Request"), OmsRpcError),
    (200, rpc_error(-32700, "Parse error"), OmsRpcError),
    (400, rpc_error(-32000, "validation failed"), OmsRpcError),
    (400, "bad request", OmsRejected),
    (403, "", OmsRejected),
    (409, '{"detail":"conflict"}', OmsRejected),
    (422, "nope", OmsRejected),
]

TRANSIENT = [
    (500, "", OmsUnavailable),
    (502, "<html>bad gateway</html>", OmsUnavailable),
    (503, rpc_error(-32000, "simulated failure"), OmsUnavailable),
    (408, "", OmsUnavailable),
    (429, "slow down", OmsUnavailable),
    (401, "", OmsAuthError),
    (200, rpc_error(-32000, "database is locked"), OmsRpcError),
    (200, rpc_error(-32603, "Internal error"), OmsRpcError),
]

UNKNOWN = [
    (200, ""),
    (200, "   \n"),
    (200, "<html>Whoops</html>"),
    (200, '{"jsonrpc":"2.0","id":1'),
    (200, '{"jsonrpc":"2.0","id":1}'),
    (202, ""),
]

SUCCESS: list[tuple[int, str, Any]] = [
    (200, '{"jsonrpc":"2.0","id":1,"result":[]}', []),
    (200, '{"jsonrpc":"2.0","id":1,"result":null}', None),
    (200, '{"id":1,"result":null,"error":""}', None),
    (200, '{"jsonrpc":"2.0","id":"x","result":{"duplicate":true}}', {"duplicate": True}),
    (200, "[]", []),  # mom-mock's /events answer: the bare handler result
    (201, '{"items":[1]}', {"items": [1]}),
]


@pytest.mark.parametrize(("status", "body", "kind"), PERMANENT)
def test_permanent_answers_are_not_retried(status: int, body: str, kind: type[OmsError]) -> None:
    with pytest.raises(OmsError) as exc:
        interpret(M, answer(status, body))
    assert type(exc.value) is kind
    assert M in str(exc.value)
    assert not exc.value.retryable


@pytest.mark.parametrize(("status", "body", "kind"), TRANSIENT)
def test_transient_answers_are_retried(status: int, body: str, kind: type[OmsError]) -> None:
    with pytest.raises(OmsError) as exc:
        interpret(M, answer(status, body))
    assert type(exc.value) is kind
    assert exc.value.retryable


@pytest.mark.parametrize(("status", "body"), UNKNOWN)
def test_an_answer_that_is_no_readable_success_is_an_unknown_outcome(status: int, body: str) -> None:
    with pytest.raises(OmsUnknownOutcome) as exc:
        interpret(M, answer(status, body))
    assert exc.value.retryable
    assert "unknown outcome" in str(exc.value)


@pytest.mark.parametrize(("status", "body", "expected"), SUCCESS)
def test_readable_successes_return_the_result(status: int, body: str, expected: Any) -> None:
    assert interpret(M, answer(status, body)) == expected


@pytest.mark.parametrize(("message", "missing"), [
    ("Handler not found", True), ("handler not found for magento.x", True), ("No valid method provided", True),
    ("Method not found: magento.x", True), ("unknown method", True), ("database is locked", False),
    ("order not found", False),
])
def test_missing_handler_phrases(message: str, missing: bool) -> None:
    assert names_missing_handler(message) is missing
