"""Every OMS method name the connector knows, in one place (oms-protocol.md §8)."""

from typing import Final

REGISTER: Final = "magento.service_bus.remote.register"
UNREGISTER: Final = "magento.service_bus.remote.unregister"

ORDER_CREATE: Final = "magento.sales.order_management.create"
ORDER_CREATED: Final = "magento.sales.order_management.created"
ORDER_UPDATED: Final = "magento.sales.order_management.updated"
SHIPMENT_DONE: Final = "magento.logistics.fulfillment_management.customer_shipment_done"
REQUEST_SHIPPING_DETAILS: Final = "magento.logistics.carrier_management.request_shipping_details"
REQUEST_SHIPMENT: Final = "magento.logistics.warehouse_management.request_shipment"
LINES_SHIPPED: Final = "magento.logistics.warehouse_management.lines_shipped"

STOCK_UPDATED: Final = "magento.inventory.aggregate_stock_management.updated"
SOURCE_SEARCH: Final = "magento.inventory.source_repository.search"

PRODUCT_UPDATED: Final = "magento.catalog.product_management.updated"

RETURN_AUTHORIZE: Final = "magento.postsales.return_management.authorize"
RETURN_UPDATED: Final = "magento.postsales.return_management.updated"
REFUND_UPDATED: Final = "magento.postsales.refund_management.updated"
