"""Inbound OMS message handlers of the service_bus module (registered with service_bus.registry)."""
