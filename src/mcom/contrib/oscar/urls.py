"""URL map of an Oscar shop with mcom: mcom's admin, REST intake and OMS endpoint, then Oscar's
storefront and dashboard at ``/``."""

from django.apps import apps
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from mcom.commerce.api import api as commerce_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/mcom/", include("mcom.adminui.urls")),
    path("admin/", admin.site.urls),
    path("api/", commerce_api.urls),
    path("", include("mcom.service_bus.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include(getattr(apps.get_app_config("oscar"), "urls")[0])),  # noqa: B009 - OscarConfig.urls
]
