"""Catalog fixtures: products through the commerce services, outbox readers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mcom.commerce import config, services
from mcom.commerce.schemas import ProductIn
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage


def make_products(n: int, *, prefix: str = "P", start: int = 0, **fields: Any) -> list[ProductIn]:
    return [ProductIn(sku=f"{prefix}{i:06d}", name=f"Product {i}", **fields) for i in range(start, start + n)]


@pytest.fixture
def upsert(db: None) -> Callable[..., Any]:
    def go(items: list[ProductIn]) -> Any:
        return services.upsert_products(items)

    return go


def product_messages(sku: str | None = None) -> list[dict[str, Any]]:
    """Params of the queued product messages (oldest first), optionally of one SKU."""
    qs = LoggedMessage.objects.filter(direction=LoggedMessage.OUT, topic=methods.PRODUCT_UPDATED).order_by("id")
    if sku is not None:
        qs = qs.filter(entity_key=f"product:{sku}")
    return [json.loads(p) for p in qs.values_list("payload", flat=True)]


@pytest.fixture
def attributes(db: None) -> Callable[[str], None]:
    def set_(codes: str) -> None:
        config.set_value("mcom/catalog/custom_attributes", codes)

    return set_
