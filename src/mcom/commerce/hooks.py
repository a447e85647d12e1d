"""Explicit extension points of the store side, filled by connector modules at app-ready.

Commerce code calls these at well-defined moments; modules (sales, catalog, inventory) register
plain functions. No Django signals carry business flow.

- ``order_placed``: after an order is placed and committed (sales may export it synchronously).
- ``order_status_guard``: before a *local* status change; a guard raises :class:`ChangeRefused`.
- ``products_saved``: inside the saving transaction, with the saved products (catalog queues sync).
- ``stock_edit_guard``: before a local stock edit; raises :class:`ChangeRefused` when not allowed.
- ``non_stock_skus``: SKUs the OMS knows that are not store products (catalog: shipping methods);
  a stock snapshot listing them does not report them as unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcom.commerce.models import Order, Product


class ChangeRefused(Exception):
    """A local change that the connector does not allow; the message says why."""


OrderHook = Callable[["Order"], None]
StatusGuard = Callable[["Order", str], None]
ProductsHook = Callable[[Sequence["Product"]], None]
StockGuard = Callable[["Product"], None]

order_placed: list[OrderHook] = []
order_status_guard: list[StatusGuard] = []
products_saved: list[ProductsHook] = []
stock_edit_guard: list[StockGuard] = []
non_stock_skus: list[Callable[[], Iterable[str]]] = []


def register(hooks: list, fn: Callable) -> None:  # type: ignore[type-arg]
    """Append ``fn`` once (re-running app-ready in tests must not register twice)."""
    if fn not in hooks:
        hooks.append(fn)
