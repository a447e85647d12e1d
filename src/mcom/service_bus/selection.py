"""Which messages of the log an operator means: one filter for the admin's message list and mass
actions and for ``mcom oms:queue:retry``/``oms:queue:ignore`` (:func:`mcom.service_bus.log.bulk_retry`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q


@dataclass(frozen=True)
class MessageFilter:
    """Every field optional; the set fields all apply (AND). Dates are aware datetimes on ``created_at``
    (``after`` inclusive, ``before`` exclusive)."""

    ids: Sequence[int] = ()
    statuses: Sequence[str] = ()
    direction: str = ""
    topic: str = ""
    entity: str = ""  # exact entity key (``order:000000004``)
    error_contains: str = ""
    after: datetime | None = None
    before: datetime | None = None
    search: str = ""  # the admin's search box: entity key or message id contains, or the log id

    def narrows(self) -> bool:
        """Whether anything besides the status narrows the selection (a bulk change needs it, or ``--all``)."""
        return bool(self.ids or self.direction or self.topic or self.entity or self.error_contains or self.after
                    or self.before or self.search)

    def q(self) -> Q:
        q = Q()
        if self.ids:
            q &= Q(pk__in=list(self.ids))
        if self.statuses:
            q &= Q(status__in=list(self.statuses))
        if self.direction:
            q &= Q(direction=self.direction)
        if self.topic:
            q &= Q(topic=self.topic)
        if self.entity:
            q &= Q(entity_key=self.entity)
        if self.error_contains:
            q &= Q(last_error__icontains=self.error_contains)
        if self.after is not None:
            q &= Q(created_at__gte=self.after)
        if self.before is not None:
            q &= Q(created_at__lt=self.before)
        term = self.search.strip()
        if term:
            match = Q(entity_key__icontains=term) | Q(message_id__icontains=term)
            if term.isdigit():
                match |= Q(pk=int(term))
            q &= match
        return q
