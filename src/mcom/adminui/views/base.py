"""Plumbing shared by the MCOM pages: access rules and the admin page context."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mcom.adminui import permissions
from mcom.adminui.menu import MENU

View = Callable[..., HttpResponse]


def page(view: View) -> View:
    """A read-only MCOM page: logged-in staff (else the admin login) with view rights (else 403)."""

    @functools.wraps(view)
    def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_view(request.user):
            raise PermissionDenied("You may not view the MCOM section.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(require_GET(inner))


def action(view: View) -> View:
    """An MCOM action: POST only, CSRF-checked, and only for users who may act (else 403)."""

    @functools.wraps(view)
    def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_act(request.user):
            raise PermissionDenied("Your role may view the MCOM section but not act in it.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(require_POST(inner))


def form_page(view: View) -> View:
    """A page that shows a form on GET (view rights) and saves it on POST (act rights)."""

    @functools.wraps(view)
    def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_view(request.user):
            raise PermissionDenied("You may not view the MCOM section.")
        if request.method == "POST" and not permissions.can_act(request.user):
            raise PermissionDenied("Your role may view the MCOM section but not change it.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(require_http_methods(["GET", "HEAD", "POST"])(inner))


def render_page(
    request: HttpRequest, template: str, *, menu: str, title: str, **context: Any
) -> TemplateResponse:
    """Render ``template`` with the admin's context (branding, sidebar) and the MCOM menu state."""
    ctx: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": title,
        "mcom_current": menu,
        "mcom_menu_items": MENU,
        "can_act": permissions.can_act(request.user),
        **context,
    }
    return TemplateResponse(request, template, ctx)
