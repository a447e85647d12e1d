"""Playwright + Debian chromium against the live Oscar storefront served by the connector's ASGI app
(``--ds=mcom.contrib.oscar.settings``): the same process answers the OMS's deliveries. The browser
and screenshot fixtures are the admin browser tests' own."""

from __future__ import annotations

import os

from tests.admin.browser.conftest import browser, shot  # noqa: F401  (fixtures)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
