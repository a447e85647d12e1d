"""Use cases of the catalog module (what the CLI, the admin and cron call).

- Product sync: :func:`queue_products` (called by the ``products_saved`` hook),
  :func:`queue_shipping_methods`.
- Full-catalog export: :func:`schedule_export`, :func:`run_export`, :func:`cancel_export`,
  :func:`current_task` (see :mod:`mcom.catalog.export` for the design).
"""

from __future__ import annotations

from mcom.catalog.export import (
    ExportBusy,
    ExportError,
    NothingToCancel,
    cancel_export,
    current_task,
    open_task,
    run_export,
    run_pending,
    schedule_export,
)
from mcom.catalog.sync import (
    discover_shipping_methods,
    mapping_context,
    queue_products,
    queue_shipping_methods,
    spec_for,
)

__all__ = [
    "ExportBusy",
    "ExportError",
    "NothingToCancel",
    "cancel_export",
    "current_task",
    "discover_shipping_methods",
    "mapping_context",
    "open_task",
    "queue_products",
    "queue_shipping_methods",
    "run_export",
    "run_pending",
    "schedule_export",
    "spec_for",
]
