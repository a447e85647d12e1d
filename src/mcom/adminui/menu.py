"""The MCOM menu: one entry per page, in the order the seed lists them."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class MenuItem:
    name: str  # URL name in the ``mcom_admin`` namespace
    label: str
    description: str

    @property
    def url(self) -> str:
        return reverse(f"mcom_admin:{self.name}")


MENU: tuple[MenuItem, ...] = (
    MenuItem("dashboard", "Dashboard", "Activity of the last 24 hours and the state of the connector."),
    MenuItem("integration", "Integration", "Service-bus registration, topics and the connection to the OMS."),
    MenuItem("configuration", "Configuration", "Stores > Configuration > MCOM Connector, per scope."),
    MenuItem("messages", "Message log", "Incoming and outgoing messages: filter, payload, retry."),
    MenuItem("catalog_export", "Catalog export", "Export the full catalog, follow its progress, cancel it."),
    MenuItem("changelog", "Change log", "What changed in each version of the connector."),
    MenuItem("system_report", "System report", "Installed modules and versions, database, queue, cron."),
    MenuItem("connector_log", "Connector log", "The end of var/log/mcom-connector.log."),
)
