"""URLs of the MCOM section of the Commerce Admin (mounted at ``/admin/mcom/``)."""

from django.urls import URLPattern, URLResolver, path

from mcom.adminui.views import catalog_export, configuration, dashboard, info, integration, messages

app_name = "mcom_admin"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", dashboard.dashboard, name="dashboard"),
    path("integration/", integration.integration, name="integration"),
    path("integration/register/", integration.register, name="register"),
    path("integration/check/", integration.check_connection, name="check_connection"),
    path("integration/disable/", integration.disable, name="integration_disable"),
    path("integration/enable/", integration.enable, name="integration_enable"),
    path("configuration/", configuration.configuration, name="configuration"),
    path("messages/", messages.message_list, name="messages"),
    path("messages/actions/", messages.message_mass_action, name="message_mass_action"),
    path("messages/<int:pk>/", messages.message_detail, name="message"),
    path("messages/<int:pk>/retry/", messages.message_retry, name="message_retry"),
    path("messages/<int:pk>/ignore/", messages.message_ignore, name="message_ignore"),
    path("catalog-export/", catalog_export.catalog_export, name="catalog_export"),
    path("catalog-export/status/", catalog_export.catalog_export_status, name="catalog_export_status"),
    path("catalog-export/run/", catalog_export.catalog_export_run, name="catalog_export_run"),
    path("catalog-export/schedule/", catalog_export.catalog_export_schedule, name="catalog_export_schedule"),
    path("catalog-export/cancel/", catalog_export.catalog_export_cancel, name="catalog_export_cancel"),
    path("changelog/", info.changelog, name="changelog"),
    path("system-report/", info.system_report, name="system_report"),
    path("connector-log/", info.connector_log, name="connector_log"),
]
