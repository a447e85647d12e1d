"""Example mcom plugin: a ``warehouse_zone`` attribute on every physical order line.

Entry points (see ``pyproject.toml``)::

    [project.entry-points."mcom.sales.line_mapper"]
    mcom_example_warehouse_zone = "mcom_example_plugin:WarehouseZone"
    [project.entry-points."mcom.sales.order_mapper"]
    mcom_example_order_tag = "mcom_example_plugin:tag_order"

Contract (``mcom.sales.plugins``): a line hook gets the commerce ``OrderItem`` and the mapped
``OrderLine`` (one per unit) and returns the line; an order hook gets the ``Order`` and the complete
``OrderSpec`` and returns it. Both values are frozen: return a changed copy. Never save the models.
An exception here fails the export of that order (named after the entry point); cron retries it.
"""

from __future__ import annotations

from typing import Any

__version__ = "1.0.0"

ATTRIBUTE = "warehouse_zone"


class WarehouseZone:
    """Adds ``warehouse_zone`` to physical lines: the item's own option, else ``ZONE-<first letter>``."""

    def after_line_to_specification(self, item: Any, line: Any) -> Any:
        if line.product_type != "PHYSICAL":
            return line
        own = (item.custom_attributes or {}).get(ATTRIBUTE)
        zone = str(own) if own else f"ZONE-{line.sku[:1].upper() or 'X'}"
        return line.with_attribute(ATTRIBUTE, zone)


def tag_order(order: Any, spec: Any) -> Any:
    """Order hook: marks the order as mapped with this plugin."""
    return spec.with_attribute("exported_with", "mcom-example-plugin")
