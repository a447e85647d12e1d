"""Wire-level constants and helpers shared by the sandbox modules (methods, errors, signing)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

# --- method names (topics) -------------------------------------------------------------
REGISTER: Final = "magento.service_bus.remote.register"
UNREGISTER: Final = "magento.service_bus.remote.unregister"
ORDER_CREATE: Final = "magento.sales.order_management.create"
ORDER_UPDATED: Final = "magento.sales.order_management.updated"
SHIPMENT_DONE: Final = "magento.logistics.fulfillment_management.customer_shipment_done"
STOCK_UPDATED: Final = "magento.inventory.aggregate_stock_management.updated"
PRODUCT_UPDATED: Final = "magento.catalog.product_management.updated"
SOURCE_SEARCH: Final = "magento.inventory.source_repository.search"
RETURN_AUTHORIZE: Final = "magento.postsales.return_management.authorize"
RETURN_UPDATED: Final = "magento.postsales.return_management.updated"
REFUND_UPDATED: Final = "magento.postsales.refund_management.updated"
REQUEST_SHIPPING_DETAILS: Final = "magento.logistics.carrier_management.request_shipping_details"
REQUEST_SHIPMENT: Final = "magento.logistics.warehouse_management.request_shipment"
LINES_SHIPPED: Final = "magento.logistics.warehouse_management.lines_shipped"

# --- JSON-RPC error codes --------------------------------------------------------------
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
SERVER_ERROR: Final = -32000
UNAUTHORIZED: Final = -32001

MAX_SNAPSHOT_SKUS: Final = 10_000


class RpcError(Exception):
    """A JSON-RPC error answer: ``code`` is one of the constants above."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {message}")


def sign(secret: str, body: bytes) -> str:
    """``X-Signature`` header value for ``body``: ``sha1=<hex HMAC-SHA1(secret, body)>`` (§5)."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of an ``X-Signature`` header against ``body``."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def new_message_id() -> str:
    return str(uuid.uuid4())


def envelope(method: str, params: dict[str, Any], message_id: str) -> bytes:
    """The exact bytes of an outbound JSON-RPC request (signed as they are)."""
    doc = {"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def now_iso() -> str:
    """ISO 8601 with offset, seconds precision (e.g. ``2024-05-01T10:00:00+00:00``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def now_space() -> str:
    """``YYYY-MM-DD HH:MM:SS+00:00`` as in shipment dates (§8.3)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def now_plain() -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC, no zone) as in stock snapshots (§8.4)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
