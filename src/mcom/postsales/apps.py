from django.apps import AppConfig


class PostsalesConfig(AppConfig):
    name = "mcom.postsales"
    label = "postsales"
    verbose_name = "Post-sales"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.postsales import handlers, jobs  # noqa: F401  (registers topics and cron jobs)
