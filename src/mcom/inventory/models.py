"""The inventory module keeps no tables of its own: stock lives in the commerce tables
``cataloginventory_stock_item`` / ``cataloginventory_stock_status`` and aggregates in
``commerce.StockAggregate`` (linked to stores by ``Store.stock_aggregate``)."""
