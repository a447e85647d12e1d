"""Integration: Enable / Disable, the service-bus settings, topics, registration history, Register and
Check connection."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from mcom import envconfig
from mcom.adminui import connection
from mcom.adminui.redact import redact
from mcom.adminui.views.base import action, page, render_page
from mcom.service_bus import integration as switch
from mcom.service_bus import registry
from mcom.service_bus.models import LoggedMessage, Registration

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
        integration=switch.state(),
        queued_out=LoggedMessage.objects.filter(direction=LoggedMessage.OUT, status__in=LoggedMessage.PENDING).count(),
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


@action
def disable(request: HttpRequest) -> HttpResponse:
    reason = str(request.POST.get("reason", "")).strip()[: switch.MAX_REASON]
    switch.disable(by=f"admin:{request.user.get_username()}", reason=reason)
    messages.warning(request, "The integration is disabled: nothing is sent to the OMS and its deliveries are "
                              "refused. Queued messages are kept and sent after Enable.")
    return _back()


@action
def enable(request: HttpRequest) -> HttpResponse:
    switch.enable(by=f"admin:{request.user.get_username()}")
    messages.success(request, "The integration is enabled: queued messages are sent by the next worker pass.")
    return _back()
