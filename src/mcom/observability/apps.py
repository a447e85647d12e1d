from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "mcom.observability"
    label = "observability"
    verbose_name = "Observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.observability import activity, attempts  # noqa: F401  (cron job, prune hook, attempt listener)
