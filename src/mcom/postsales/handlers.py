"""Inbound OMS message handlers of the postsales module (registered with service_bus.registry)."""
