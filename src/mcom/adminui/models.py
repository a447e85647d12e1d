"""A table-less model that only carries the permissions of the MCOM section.

``adminui.mcom_view`` lets a staff user see the MCOM pages; ``adminui.mcom_act`` lets them act
(register, retry/ignore messages, run or cancel a catalog export, change configuration).
Superusers have both.
"""

from __future__ import annotations

from django.db import models


class McomSection(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("mcom_view", "Can view the MCOM section"),
            ("mcom_act", "Can act in the MCOM section (register, retry, export, configure)"),
        ]
        verbose_name = "MCOM section"

    def __str__(self) -> str:
        return "MCOM section"
