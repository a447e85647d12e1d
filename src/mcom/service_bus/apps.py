from django.apps import AppConfig


class ServiceBusConfig(AppConfig):
    name = "mcom.service_bus"
    label = "service_bus"
    verbose_name = "Service bus"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.service_bus import checks, handlers, jobs  # noqa: F401  (registers checks and bus jobs)
