"""Django settings for a django-oscar shop with mcom beside it in one project and one database.

mcom's own settings (instance root, ``etc/env.toml``, database, logging) are taken as they are;
Oscar's apps, middleware, context processors and defaults are added, then the adapter
(:mod:`mcom.contrib.oscar`). Use it with ``DJANGO_SETTINGS_MODULE=mcom.contrib.oscar.settings``
(``mcom serve``, ``mcom cron:run``, ``django-admin``), or import it from your own settings module and
override what your shop needs (``OSCAR_*``, ``MCOM_OSCAR``, ``ROOT_URLCONF``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oscar
from oscar import defaults as _oscar_defaults

from mcom import settings as _mcom

_NAMES = [n for n in dir(_mcom) if n.isupper()]
globals().update({n: getattr(_mcom, n) for n in _NAMES})

# Oscar's defaults (OSCAR_*, HAYSTACK_*) first; everything below may override them.
globals().update({n: getattr(_oscar_defaults, n) for n in dir(_oscar_defaults) if n.isupper()})

ROOT = _mcom.ROOT
_HERE = Path(__file__).resolve().parent
INSTALLED_APPS: list[str] = list(
    dict.fromkeys([*_mcom.INSTALLED_APPS, *oscar.INSTALLED_APPS, "sorl.thumbnail", "mcom.contrib.oscar"])
)
SITE_ID = 1

MIDDLEWARE: list[str] = [
    *_mcom.MIDDLEWARE,
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

_base_templates: dict[str, Any] = dict(_mcom.TEMPLATES[0])
_base_options: dict[str, Any] = dict(_base_templates["OPTIONS"])
_context: list[str] = [
    *_base_options["context_processors"],
    "oscar.apps.search.context_processors.search_form",
    "oscar.apps.checkout.context_processors.checkout",
    "oscar.apps.communication.notifications.context_processors.notifications",
    "oscar.core.context_processors.metadata",
]
# The adapter's template folder first: its oscar/base.html extends Oscar's (jQuery served locally).
TEMPLATES: list[dict[str, Any]] = [
    {**_base_templates, "DIRS": [_HERE / "templates", *_base_templates["DIRS"]],
     "OPTIONS": {**_base_options, "context_processors": _context}}
]

ROOT_URLCONF = "mcom.contrib.oscar.urls"
AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# mcom's admin keeps /admin/login/; the shop's customers sign in on Oscar's pages.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Oscar browses and searches through haystack: a Whoosh index in the instance (pure Python, no
# search server), kept current on every product save; ``django-admin rebuild_index`` rebuilds it.
HAYSTACK_CONNECTIONS = {
    "default": {"ENGINE": "haystack.backends.whoosh_backend.WhooshEngine", "PATH": str(ROOT / "var" / "whoosh")}
}

MEDIA_ROOT = ROOT / "var" / "media"
MEDIA_URL = "/media/"
THUMBNAIL_DEBUG = False

OSCAR_SHOP_NAME = "mcom demo shop"
OSCAR_DEFAULT_CURRENCY = "EUR"
OSCAR_FROM_EMAIL = "shop@example.invalid"
OSCAR_ALLOW_ANON_CHECKOUT = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# The order and line pipelines the adapter moves orders through (a shop sets its own).
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Shipped", "Cancelled"),
    "Being processed": ("Shipped", "Cancelled"),
    "Shipped": ("Refunded",),
    "Cancelled": (),
    "Refunded": (),
}
OSCAR_LINE_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Shipped", "Cancelled"),
    "Being processed": ("Shipped", "Cancelled"),
    "Shipped": ("Returned",),
    "Cancelled": (),
    "Returned": (),
}
OSCAR_ORDER_STATUS_CASCADE = {"Being processed": "Being processed", "Cancelled": "Cancelled"}

# The adapter's mapping (see mcom.contrib.oscar.conf for every key and its default).
MCOM_OSCAR: dict[str, Any] = {
    "stores": {},  # Oscar site id → mcom store code (default: DEFAULT_STORE)
    "default_store": "oscar",
    "aggregates": {},  # OMS stock aggregate id → Oscar partner codes whose stock records it sets
}
