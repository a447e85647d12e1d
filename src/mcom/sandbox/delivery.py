"""Signed outbound deliveries to the registered connector (§5), each journaled."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from mcom import __version__
from mcom.sandbox import store
from mcom.sandbox.protocol import envelope, new_message_id, sign

log = logging.getLogger("mcom.sandbox.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Outcome of one delivery to one integration."""

    method: str
    message_id: str
    integration: str
    url: str
    status: str  # SUCCESS | ERROR
    http_status: int | None
    error: str
    result: Any
    journal_id: int

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Deliverer:
    """Sends JSON-RPC requests to integrations: subscribers of the topic, else the first one."""

    def __init__(self, db: store.Store, timeout: float = 10.0) -> None:
        self._db = db
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                headers={"User-Agent": f"mcom-sandbox/{__version__}"},
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def targets(self, method: str, integration_id: str | None = None) -> list[store.Integration]:
        with self._db.read() as db:
            registered = store.integrations(db)
        if integration_id is not None:
            return [i for i in registered if i.id == integration_id]
        subscribed = [i for i in registered if method in i.subscribes]
        return subscribed or registered[:1]

    async def deliver(self, method: str, params: dict[str, Any], *, integration_id: str | None = None,
                      message_id: str | None = None, redelivery_of: int | None = None,
                      timeout: float | None = None) -> list[DeliveryResult]:
        """Deliver to every target; never raises for transport errors (they are journaled as ERROR)."""
        targets = self.targets(method, integration_id)
        if not targets:
            mid = message_id or new_message_id()
            body = envelope(method, params, mid)
            error = "no integration registered" if integration_id is None else f"integration {integration_id} not registered"
            return [self._journal(method, mid, "", "", body, "ERROR", error, "", None, None, redelivery_of)]
        results = []
        for target in targets:
            mid = message_id or new_message_id()
            results.append(await self._send(target, method, params, mid, redelivery_of, timeout))
        return results

    async def _send(self, target: store.Integration, method: str, params: dict[str, Any], message_id: str,
                    redelivery_of: int | None, timeout: float | None) -> DeliveryResult:
        body = envelope(method, params, message_id)
        if target.secret_lost:
            error = (f"the bus secret of integration {target.id} is kept in memory only and was lost when the "
                     "sandbox restarted; register again (mcom oms:register)")
            return self._journal(method, message_id, target.id, target.url, body, "ERROR", error, "", None,
                                 None, redelivery_of)
        headers = {"Content-Type": "application/json", "X-Signature": sign(target.secret, body)}
        try:
            response = await self._http().post(
                target.url, content=body, headers=headers,
                timeout=httpx.Timeout(timeout) if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.info("delivery of %s to %s failed: %s", method, target.id, error)
            return self._journal(method, message_id, target.id, target.url, body, "ERROR", error, "", None,
                                 None, redelivery_of)
        result, note = _read_answer(response)
        if response.is_success:
            return self._journal(method, message_id, target.id, target.url, body, "SUCCESS", "", note,
                                 response.status_code, result, redelivery_of)
        error = f"HTTP {response.status_code}: {response.text[:300]}"
        return self._journal(method, message_id, target.id, target.url, body, "ERROR", error, note,
                             response.status_code, result, redelivery_of)

    def _journal(self, method: str, message_id: str, integration: str, url: str, body: bytes, status: str,
                 error: str, note: str, http_status: int | None, result: Any,
                 redelivery_of: int | None) -> DeliveryResult:
        with self._db.tx() as db:
            journal_id = store.journal_add(
                db, direction="outgoing", method=method, message_id=message_id, counterpart=integration,
                payload=body.decode("utf-8"), status=status, error=error, note=note, http_status=http_status,
                redelivery_of=redelivery_of,
            )
        return DeliveryResult(method, message_id, integration, url, status, http_status, error, result, journal_id)

    async def redeliver(self, journal_id: int) -> list[DeliveryResult]:
        """Send a journaled outgoing message again (same id) to its integration, else the current targets."""
        with self._db.read() as db:
            entry = store.journal_get(db, journal_id)
        if entry is None or entry["direction"] != "outgoing" or not isinstance(entry["payload"], dict):
            raise LookupError(f"no outgoing journal entry {journal_id}")
        doc = entry["payload"]
        method, params = str(doc.get("method")), doc.get("params") or {}
        integration = entry["counterpart"] or None
        if integration is not None and not self.targets(method, integration):
            integration = None
        return await self.deliver(method, params, integration_id=integration, message_id=str(doc.get("id")),
                                  redelivery_of=journal_id)


def _read_answer(response: httpx.Response) -> tuple[Any, str]:
    """``(result, note)`` from a connector's answer; lenient like the protocol asks (§2)."""
    if not response.content:
        return None, "empty answer body"
    try:
        doc = json.loads(response.content)
    except ValueError:
        return None, "answer is not JSON"
    if isinstance(doc, dict):
        error = doc.get("error")
        if error:
            return None, f"answered with JSON-RPC error: {json.dumps(error)[:300]}"
        return doc.get("result"), ""
    return doc, "answer is not a JSON-RPC envelope"
