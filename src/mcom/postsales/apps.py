from django.apps import AppConfig


class PostsalesConfig(AppConfig):
    name = "mcom.postsales"
    label = "postsales"
    verbose_name = "Post-sales"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.postsales import api, handlers, jobs  # noqa: F401  (registers topics and outbound methods)

        api.mount()  # REST routes under /api/orders/{increment_id}/returns
