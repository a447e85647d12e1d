"""Cron jobs and outbound method declarations of the postsales module."""

from __future__ import annotations

from mcom.postsales import services
from mcom.service_bus import methods, registry
from mcom.service_bus.models import LoggedMessage

registry.outbound(
    methods.RETURN_AUTHORIZE,
    module="postsales",
    kind=LoggedMessage.KIND_DELEGATE,
    on_sent=services.authorize_sent,
    on_failed=services.authorize_failed,
)
