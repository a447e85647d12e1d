from django.apps import AppConfig


class AdminuiConfig(AppConfig):
    name = "mcom.adminui"
    label = "adminui"
    verbose_name = "MCOM admin"
    default_auto_field = "django.db.models.BigAutoField"
