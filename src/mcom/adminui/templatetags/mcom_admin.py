"""``{% load mcom_admin %}``: the MCOM menu for the admin's sidebar and index page."""

from __future__ import annotations

import json
from typing import Any

from django import template

from mcom.adminui import permissions
from mcom.adminui.menu import MENU, MenuItem

register = template.Library()


@register.simple_tag(takes_context=True)
def mcom_menu(context: template.Context) -> list[MenuItem]:
    """The menu entries the current user may see (empty for users without MCOM access)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not permissions.can_view(user):
        return []
    return list(MENU)


@register.filter
def pretty_json(raw: Any) -> str:
    """Indent a JSON text for display; text that is not JSON is returned unchanged."""
    if not isinstance(raw, str) or not raw.strip():
        return "" if raw is None else str(raw)
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=False)
    except ValueError:
        return raw
