"""The ``mcom.testing`` Django app: installs test-only handlers in a subprocess under test.

Tests and benchmarks that start ``mcom serve`` / ``mcom cron:run`` give them extra routes with
``MCOM_TEST_HANDLERS=module[,module…]``: when that variable is set, the settings add this app, and
at app-ready each module is imported and its ``install()`` called. Production never loads it.
"""

from __future__ import annotations

import importlib
import os

from django.apps import AppConfig

#: comma-separated modules imported at app-ready (their ``install()`` is called when present)
TEST_HANDLERS_ENV = "MCOM_TEST_HANDLERS"


def requested() -> list[str]:
    """The modules named in :data:`TEST_HANDLERS_ENV`."""
    return [n for n in (n.strip() for n in os.environ.get(TEST_HANDLERS_ENV, "").split(",")) if n]


class TestingConfig(AppConfig):
    name = "mcom.testing"
    label = "mcom_testing"
    verbose_name = "mcom test support"

    def ready(self) -> None:
        for name in requested():
            module = importlib.import_module(name)
            install = getattr(module, "install", None)
            if callable(install):
                install()
