"""Inbound OMS message handlers of the catalog module (registered with service_bus.registry)."""
