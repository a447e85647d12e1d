"""The inbound endpoint ``/mcom/service-bus`` (Django view; ``mcom serve`` answers the same path
with the fast ASGI handler of :mod:`mcom.service_bus.ingest`)."""

from django.urls import URLPattern, URLResolver, path

from mcom.service_bus.endpoint import service_bus_view

urlpatterns: list[URLPattern | URLResolver] = [
    path("mcom/service-bus", service_bus_view, name="mcom-service-bus"),
]
