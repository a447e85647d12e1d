"""Fixtures: a real sandbox on a free loopback port, a real HTTP receiver standing in for the connector."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcom.sandbox.protocol import verify
from mcom.sandbox.testing import SandboxServer

SECRET = "receiver-secret-0123456789abcdef0123"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def method(self) -> str:
        return str(self.doc["method"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.doc["params"])


@dataclass
class Receiver:
    """A tiny real HTTP server recording every delivery (stands in for the connector's endpoint)."""

    url: str = ""
    messages: list[Received] = field(default_factory=list)
    status: int = 200
    answers: dict[str, Any] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.of(method)) >= count, timeout=timeout)
        found = self.of(method)
        assert len(found) >= count, f"expected {count} x {method}, got {[m.method for m in self.messages]}"
        return found

    def of(self, method: str) -> list[Received]:
        return [m for m in list(self.messages) if m.method == method]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            message = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with receiver.arrived:
                receiver.messages.append(message)
                receiver.arrived.notify_all()
            doc = json.loads(body)
            answer = json.dumps({"jsonrpc": "2.0", "id": doc.get("id"),
                                 "result": receiver.answers.get(doc.get("method"), {})}).encode()
            self.send_response(receiver.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/mcom/service-bus"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path) as server:
        yield server


class Bus:
    """A minimal connector-side client: token + JSON-RPC calls."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.url, timeout=10)
        self.token = sandbox.token()
        self._ids = 0

    def call(self, method: str, params: Any, path: str = "delegate/oms", token: str | None = None) -> httpx.Response:
        self._ids += 1
        return self.http.post(path, json={"jsonrpc": "2.0", "id": f"c{self._ids}", "method": method, "params": params},
                              headers={"Authorization": f"Bearer {token or self.token}"})

    def ok(self, method: str, params: Any, path: str = "delegate/oms") -> Any:
        response = self.call(method, params, path)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert "error" not in doc, doc
        return doc["result"]

    def register(self, receiver: Receiver, topics: list[str] | None = None, app_id: str = "mdc") -> None:
        params: dict[str, Any] = {"id": app_id, "url": receiver.url, "secret": SECRET}
        if topics is not None:
            params["subscribes"] = topics
        self.ok("magento.service_bus.remote.register", params, path="")


@pytest.fixture
def bus(sandbox: SandboxServer) -> Iterator[Bus]:
    client = Bus(sandbox)
    yield client
    client.http.close()


def order_params(order_id: str = "000000001", qty: float = 1) -> dict[str, Any]:
    amount = {"net_amount": 84.03, "gross_amount": 100.0, "tax_amount": 15.97, "tax_rate": 19, "currency": "EUR",
              "taxes": [{"type": "VAT", "amount": 15.97, "rate": 19}]}
    return {"order": {
        "id": order_id, "store": "default", "status": None, "status_reason": "", "language": "en_US",
        "vat_country": "DE", "origin": "FRONTEND", "origin_date": "2024-05-01T10:00:00+00:00",
        "customer": {"id": "anonymous", "type": "GUEST", "segment": "B2C"},
        "addresses": [{"reference": "addr-1", "address_type": "customer", "first_name": "Ada", "last_name": "Lovelace",
                       "address1": "1 Main St", "city": "Berlin", "zip": "10115", "country_code": "DE",
                       "email": "ada@example.test"}],
        "payments": [{"reference": "pay-1", "currency": "EUR", "transactions": [
            {"payment_method": "ZEROPAY", "payment_submethod": "ZEROPAY", "amount": 205.0,
             "billing_address_reference": "addr-1",
             "gateway_information": {"gateway_id": "OFFLINE", "authorization_status": "AUTHORIZED"}}]}],
        "lines": [
            {"id": "11", "line_number": 1, "product_type": "PHYSICAL", "sku": "24-MB01", "product_name": "Bag",
             "shipping_address_reference": "addr-1", "payment_reference": "pay-1", "amount": amount,
             "quantity": qty, "custom_attributes": [{"attribute_code": "gift", "value": "no"}]},
            {"id": "12", "line_number": 2, "product_type": "PHYSICAL", "sku": "24-MB04", "product_name": "Pack",
             "shipping_address_reference": "addr-1", "payment_reference": "pay-1", "amount": amount},
            {"id": "SHIPPING", "line_number": 3, "product_type": "SHIPPING", "sku": "STANDARD",
             "product_name": "Shipping", "amount": {**amount, "gross_amount": 5.0, "net_amount": 4.2,
                                                    "tax_amount": 0.8}},
        ],
        "custom_attributes": [{"attribute_code": "channel", "value": "web"}],
    }}


def assert_signed(message: Received, secret: str = SECRET) -> None:
    assert message.headers["content-type"] == "application/json"
    assert verify(secret, message.body, message.headers.get("x-signature")), "bad X-Signature"
