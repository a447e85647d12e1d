"""The adapter's settings: ``settings.MCOM_OSCAR`` (a dict), read once per call, with defaults.

=====================  =====================================================================
key                    meaning (default)
=====================  =====================================================================
``stores``             Oscar site id → mcom store code (``{}``); the store's sales channel id
                       and export statuses are mcom configuration of that store
``default_store``      store of orders whose site is not in ``stores`` (``"oscar"``)
``aggregates``         OMS stock aggregate id → list of Oscar partner codes whose stock
                       records its snapshots set (``{}``: every partner)
``order_statuses``     mcom order state → Oscar order status (processing → "Being
                       processed", complete → "Shipped", canceled → "Cancelled", closed →
                       "Refunded")
``line_shipped``       Oscar line status of a fully shipped line (``"Shipped"``)
``line_cancelled``     Oscar line status of a fully cancelled line (``"Cancelled"``)
``shipped_event``      Oscar shipping event type of a shipment (``"Shipped"``)
``cancelled_event``    Oscar shipping event type of cancelled quantities (``"Cancelled"``)
``refund_event``       Oscar payment event type of a refund (``"Refunded"``)
``payment_method``     mcom payment method when the order has no payment source (``"oscar"``)
=====================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_ORDER_STATUSES = {
    "processing": "Being processed",
    "complete": "Shipped",
    "canceled": "Cancelled",
    "closed": "Refunded",
}


@dataclass(frozen=True)
class AdapterConf:
    stores: dict[int, str] = field(default_factory=dict)
    default_store: str = "oscar"
    aggregates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    order_statuses: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ORDER_STATUSES))
    line_shipped: str = "Shipped"
    line_cancelled: str = "Cancelled"
    shipped_event: str = "Shipped"
    cancelled_event: str = "Cancelled"
    refund_event: str = "Refunded"
    payment_method: str = "oscar"

    def store_for_site(self, site_id: int | None) -> str:
        return self.stores.get(site_id, self.default_store) if site_id is not None else self.default_store

    def partners_for(self, aggregate: str) -> tuple[str, ...] | None:
        """Partner codes whose stock records follow ``aggregate``; None = every partner."""
        if not self.aggregates:
            return None
        return self.aggregates.get(aggregate, ())


def current() -> AdapterConf:
    raw: Any = getattr(settings, "MCOM_OSCAR", {}) or {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured("MCOM_OSCAR must be a dict")
    known = set(AdapterConf.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ImproperlyConfigured(f"MCOM_OSCAR: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values = dict(raw)
    if "stores" in values:
        values["stores"] = {int(k): str(v) for k, v in values["stores"].items()}
    if "aggregates" in values:
        values["aggregates"] = {
            str(k): (v,) if isinstance(v, str) else tuple(str(p) for p in v) for k, v in values["aggregates"].items()
        }
    if "order_statuses" in values:
        values["order_statuses"] = {**DEFAULT_ORDER_STATUSES, **values["order_statuses"]}
    return AdapterConf(**values)
