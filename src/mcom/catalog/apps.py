from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "mcom.catalog"
    label = "catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.catalog import handlers, jobs  # noqa: F401  (registers topics and cron jobs)
