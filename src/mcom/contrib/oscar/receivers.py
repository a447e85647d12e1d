"""Oscar's signals the adapter listens to.

- ``oscar.apps.order.signals.order_placed`` → :func:`mirror.mirror_order` (never fails the checkout:
  an error is logged and the ``oscar.mirror`` cron job tries again);
- ``post_save`` of ``catalogue.Product``, ``catalogue.ProductAttributeValue`` and
  ``partner.StockRecord`` → the product is mirrored after the saving transaction commits (once per
  product and transaction).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from oscar.apps.order.signals import order_placed
from oscar.core.loading import get_model

from mcom.contrib.oscar import mirror

log = logging.getLogger("mcom.contrib.oscar")


def on_order_placed(sender: Any, order: Any, **kwargs: Any) -> None:
    try:
        mirror.mirror_order(order)
    except Exception:  # noqa: BLE001 - the shop's checkout must not fail; cron mirrors it later
        log.exception("Oscar order %s: mirror failed; the oscar.mirror cron job will retry", order.number)


class _Batch:
    """Product ids saved in one transaction, mirrored once when it commits."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.done = False

    def __call__(self) -> None:
        self.done = True
        try:
            mirror.mirror_product_ids(self.ids)
        except Exception:  # noqa: BLE001 - the dashboard save succeeded; cron catches up by date_updated
            log.exception("Oscar products %s: mirror failed; the oscar.mirror cron job will retry",
                          sorted(self.ids)[:10])


def _product_changed(product_id: int | None) -> None:
    if product_id is None:
        return
    conn = transaction.get_connection()
    batch: _Batch | None = getattr(conn, "_mcom_oscar_products", None)
    # a batch of a rolled-back transaction is no longer among the connection's on-commit callbacks
    waiting = batch is not None and not batch.done and any(cb is batch for _, cb, _ in conn.run_on_commit)
    if batch is not None and waiting:
        batch.ids.add(product_id)
        return
    batch = _Batch()
    batch.ids.add(product_id)
    setattr(conn, "_mcom_oscar_products", batch)  # noqa: B010 - a private attribute on the connection
    transaction.on_commit(batch)  # outside a transaction: runs at once


def on_product_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        _product_changed(instance.pk)


def on_product_part_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        _product_changed(instance.product_id)


def connect() -> None:
    order_placed.connect(on_order_placed, dispatch_uid="mcom-oscar-order-placed")
    post_save.connect(on_product_saved, sender=get_model("catalogue", "Product"), dispatch_uid="mcom-oscar-product")
    for app, name in (("catalogue", "ProductAttributeValue"), ("partner", "StockRecord")):
        post_save.connect(on_product_part_saved, sender=get_model(app, name), dispatch_uid=f"mcom-oscar-{name}")
