"""Inbound OMS message handlers of the sales module (registered with service_bus.registry)."""
