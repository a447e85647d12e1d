"""REST intake for the storefront / ERP side (django-ninja, OpenAPI at /api/docs)."""

from ninja import NinjaAPI

from mcom import __version__

api = NinjaAPI(title="mcom REST API", version=__version__, urls_namespace="mcom_api")
