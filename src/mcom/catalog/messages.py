"""Typed params of the catalog module's OMS messages (oms-protocol.md §8.6).

``magento.catalog.product_management.updated`` carries ``{"product": ProductSpec}``. Shipping
methods travel as products of type ``shipping``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcom.wire import CustomAttribute as CustomAttribute

JsonScalar = str | int | float | bool | None


@dataclass(frozen=True)
class ProductName:
    """One localised name of a product: ``{value, channel, locale}``."""

    value: str
    channel: str
    locale: str

    def to_json(self) -> dict[str, str]:
        return {"value": self.value, "channel": self.channel, "locale": self.locale}


@dataclass(frozen=True)
class ProductSpec:
    """The product of ``product_management.updated``.

    ``enabled`` is sent both as the boolean ``enabled`` (mock) and as ``status``
    ``active``/``inactive`` (docs) — oms-protocol.md §12 #19. ``id`` equals ``sku``.
    """

    sku: str
    type: str
    names: tuple[ProductName, ...]
    enabled: bool
    custom_attributes: tuple[CustomAttribute, ...] = ()
    children_skus: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        return "active" if self.enabled else "inactive"

    def to_json(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "id": self.sku,
            "type": self.type,
            "name": [n.to_json() for n in self.names],
            "enabled": self.enabled,
            "status": self.status,
            "custom_attributes": [a.to_params() for a in self.custom_attributes],
            "children_skus": list(self.children_skus),
        }

    def to_params(self) -> dict[str, Any]:
        """The JSON-RPC ``params`` object."""
        return {"product": self.to_json()}
