from django.apps import AppConfig


class OscarAdapterConfig(AppConfig):
    """The mcom ⇄ django-oscar adapter: connects Oscar's signals and registers the adapter's cron jobs."""

    name = "mcom.contrib.oscar"
    label = "mcom_oscar"
    verbose_name = "mcom for django-oscar"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.contrib.oscar import jobs, receivers  # noqa: F401  (jobs registers the cron jobs)

        receivers.connect()
