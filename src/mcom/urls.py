"""URL map: Commerce Admin (+ MCOM section), REST intake, the OMS inbound endpoint."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path

from mcom.commerce.api import api as commerce_api


def _home(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/admin/")


urlpatterns = [
    path("admin/mcom/", include("mcom.adminui.urls")),
    path("admin/", admin.site.urls),
    path("api/", commerce_api.urls),
    path("", include("mcom.service_bus.urls")),
    path("", _home),
]
