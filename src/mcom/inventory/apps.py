from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "mcom.inventory"
    label = "inventory"
    verbose_name = "Inventory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.inventory import handlers, jobs  # noqa: F401  (registers topics and cron jobs)
