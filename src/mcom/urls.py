"""URL map: Commerce Admin (+ MCOM section), REST intake, the OMS inbound endpoint, operator endpoints."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path

from mcom.commerce.api import api as commerce_api
from mcom.observability import views as observability


def _favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=204)  # browsers ask for it on every page; no 404 in the log


def _home(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/admin/")


urlpatterns = [
    path("admin/mcom/", include("mcom.adminui.urls")),
    path("admin/", admin.site.urls),
    path("api/", commerce_api.urls),
    path("", include("mcom.service_bus.urls")),
    path("metrics", observability.metrics, name="metrics"),
    path("healthz", observability.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    path("favicon.ico", _favicon),
    path("", _home),
]
