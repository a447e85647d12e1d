"""The inbound endpoint ``/mcom/service-bus``."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
