import importlib
import os

from django.apps import AppConfig

#: comma-separated modules imported at app-ready (their ``install()`` is called when present):
#: how tests and benchmarks give a subprocess (``mcom cron:run``, ``mcom serve``) extra handlers.
TEST_HANDLERS_ENV = "MCOM_TEST_HANDLERS"


class ServiceBusConfig(AppConfig):
    name = "mcom.service_bus"
    label = "service_bus"
    verbose_name = "Service bus"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.service_bus import checks, handlers, jobs  # noqa: F401  (registers checks and bus jobs)

        for name in filter(None, (n.strip() for n in os.environ.get(TEST_HANDLERS_ENV, "").split(","))):
            module = importlib.import_module(name)
            install = getattr(module, "install", None)
            if callable(install):
                install()
