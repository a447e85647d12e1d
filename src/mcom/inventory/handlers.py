"""Inbound OMS message handlers of the inventory module (registered with service_bus.registry)."""
