"""Integration: the service-bus settings, topics, registration history, Register and Check connection."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from mcom import envconfig
from mcom.adminui import connection
from mcom.adminui.redact import redact
from mcom.adminui.views.base import action, page, render_page
from mcom.service_bus import registry
from mcom.service_bus.models import Registration

HISTORY = 10


def _inbound_url() -> tuple[str, str]:
    """``(url, problem)``: the URL the OMS delivers to, or why it cannot be built."""
    from mcom.service_bus import registration

    try:
        return registration.inbound_url(), ""
    except registration.RegistrationError as e:
        return "", redact(str(e))


@page
def integration(request: HttpRequest) -> HttpResponse:
    cfg = envconfig.current()
    sb = cfg.service_bus
    routes = registry.all_inbound()
    topics = [(t, routes[t].module if t in routes else "") for t in registry.topics()]
    history = list(Registration.objects.all()[:HISTORY])
    for reg in history:
        reg.error = redact(reg.error)
    inbound, inbound_problem = _inbound_url()
    return render_page(
        request,
        "adminui/integration.html",
        menu="integration",
        title="Integration",
        sb=sb,
        secret_configured=bool(sb.secret.get_secret_value()),
        client_secret_configured=bool(sb.oauth_client_secret.get_secret_value()),
        inbound_url=inbound,
        inbound_problem=inbound_problem,
        topics=topics,
        last=history[0] if history else None,
        history=history,
    )


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("mcom_admin:integration"))


@action
def register(request: HttpRequest) -> HttpResponse:
    from mcom.service_bus import registration

    try:
        reg = registration.register(source="admin")
    except registration.RegistrationError as e:
        messages.error(request, f"Registration failed: {redact(str(e))}")
    else:
        messages.success(
            request, f"Registered “{reg.application_id}” at {reg.url} ({len(reg.topics)} topics subscribed)."
        )
    return _back()


@action
def check_connection(request: HttpRequest) -> HttpResponse:
    result = connection.check_oauth()
    if result.ok:
        messages.success(request, result.message)
    else:
        messages.error(request, f"Connection failed: {result.message}")
    return _back()
