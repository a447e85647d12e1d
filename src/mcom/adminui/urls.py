"""URLs of the MCOM section of the Commerce Admin."""

from django.urls import URLPattern, URLResolver

app_name = "mcom_admin"
urlpatterns: list[URLPattern | URLResolver] = []
