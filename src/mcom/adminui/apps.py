from django.apps import AppConfig


class AdminuiConfig(AppConfig):
    name = "mcom.adminui"
    label = "adminui"
    verbose_name = "MCOM admin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcom.commerce import config
        from mcom.service_bus import prune

        def prune_settings() -> prune.PruneSettings:
            """The "Message Log" section of the admin config."""
            return prune.PruneSettings(bool(config.get("mcom/message_log/prune_enabled")),
                                       int(config.get("mcom/message_log/prune_days")))

        prune.use_settings(prune_settings)
