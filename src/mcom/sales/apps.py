from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "mcom.sales"
    label = "sales"
    verbose_name = "Sales"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.sales import handlers, jobs  # noqa: F401  (registers topics and cron jobs)
