"""Inventory fixtures: a small catalog and helpers to build snapshot params."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mcom.commerce.models import Product, StockAggregate, StockItem, StockStatus


@pytest.fixture
def catalog(db: None) -> list[Product]:
    products = [Product(sku=f"SKU-{i}", name=f"Product {i}") for i in range(1, 6)]
    products.append(Product(sku="VIRT", name="Gift wrap", type="virtual", manage_stock=False))
    return Product.objects.bulk_create(products)


def snapshot(aggregate: str = "EU", mode: str = "FULL", created_on: str = "2024-05-01 10:00:00",
             **stock: Any) -> dict[str, Any]:
    """``snapshot(mode="DELTA", **{"SKU-1": 5, "SKU-2": ("0", True)})`` → params."""
    lines = []
    for sku, value in stock.items():
        qty, unlimited = value if isinstance(value, tuple) else (value, None)
        entry: dict[str, Any] = {"sku": sku, "quantity": qty}
        if unlimited is not None:
            entry["unlimited"] = unlimited
        lines.append(entry)
    return {"snapshot": {"aggregate_id": aggregate, "created_on": created_on, "mode": mode, "stock": lines}}


def stock_of(aggregate: str = "EU") -> dict[str, tuple[float, bool]]:
    """sku → (qty, is_in_stock) of the stock items of ``aggregate``."""
    return {
        sku: (float(qty), bool(in_stock))
        for sku, qty, in_stock in StockItem.objects.filter(aggregate__code=aggregate).values_list(
            "product__sku", "qty", "is_in_stock"
        )
    }


def index_of(aggregate: str = "EU") -> dict[str, tuple[float, bool]]:
    return {
        sku: (float(qty), bool(status))
        for sku, qty, status in StockStatus.objects.filter(aggregate__code=aggregate).values_list(
            "product__sku", "qty", "stock_status"
        )
    }


@pytest.fixture
def eu(db: None) -> StockAggregate:
    return StockAggregate.objects.create(code="EU", name="Europe")


Snapshot = Callable[..., dict[str, Any]]
