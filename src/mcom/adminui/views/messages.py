"""Message log: the ``mcom_logged_messages_queue`` table with filters, payloads, retry and ignore."""

from __future__ import annotations

from collections.abc import Callable, Collection

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from mcom.adminui.forms import MessageFilterForm
from mcom.adminui.redact import redact, secrets
from mcom.adminui.views.base import action, page, render_page
from mcom.service_bus.models import LoggedMessage

PER_PAGE = 50
#: statuses from which an operator may retry / ignore a message
RETRYABLE = (LoggedMessage.ERROR, LoggedMessage.RETRY, LoggedMessage.IGNORED)
IGNORABLE = (LoggedMessage.NEW, LoggedMessage.RETRY, LoggedMessage.ERROR)


@page
def message_list(request: HttpRequest) -> HttpResponse:
    form = MessageFilterForm(request.GET or None)
    base = LoggedMessage.objects.all()
    without_status = form.filter(base, with_status=False)
    counts = dict.fromkeys((s for s, _ in LoggedMessage.STATUSES), 0)
    for row in without_status.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    qs = form.filter(base).order_by("-id")
    paginator = Paginator(qs, PER_PAGE)
    page_obj = paginator.get_page(request.GET.get("p"))
    selected = form.cleaned_data.get("status", "") if form.is_valid() else ""
    return render_page(
        request,
        "adminui/message_list.html",
        menu="messages",
        title="Message log",
        form=form,
        page_obj=page_obj,
        status_counts=[(s, label, counts[s]) for s, label in LoggedMessage.STATUSES],
        total=sum(counts.values()),
        selected_status=selected,
    )


@page
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    msg = get_object_or_404(LoggedMessage, pk=pk)
    known = secrets()
    return render_page(
        request,
        "adminui/message_detail.html",
        menu="messages",
        title=f"Message #{msg.pk}",
        msg=msg,
        payload=redact(msg.payload, known),
        result=redact(msg.result, known),
        last_error=redact(msg.last_error, known),
        can_retry=msg.status in RETRYABLE,
        can_ignore=msg.status in IGNORABLE,
    )


def _back(pk: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("mcom_admin:message", args=[pk]))


def _act(
    request: HttpRequest, pk: int, *, allowed: Collection[str], apply: Callable[[int], object],
    verb: str, past: str, done: str,
) -> HttpResponse:
    """Apply ``apply(pk)`` (worker retry/ignore) to a message in an ``allowed`` status; flash the outcome."""
    msg = get_object_or_404(LoggedMessage, pk=pk)
    if msg.status not in allowed:
        messages.error(request, f"Message #{pk} is {msg.get_status_display().lower()}; it cannot be {past}.")
        return _back(pk)
    try:
        apply(pk)
    except (LookupError, ValueError) as e:
        messages.error(request, f"Cannot {verb}: {e}.")
    else:
        messages.success(request, f"Message #{pk} {done}")
    return _back(pk)


@action
def message_retry(request: HttpRequest, pk: int) -> HttpResponse:
    from mcom.service_bus import worker

    return _act(request, pk, allowed=RETRYABLE, apply=worker.retry, verb="retry", past="retried",
                done="is due again; the worker (cron) processes it within seconds.")


@action
def message_ignore(request: HttpRequest, pk: int) -> HttpResponse:
    from mcom.service_bus import worker

    return _act(request, pk, allowed=IGNORABLE, apply=worker.ignore, verb="ignore", past="ignored",
                done="is ignored; the worker will not process it again.")
    try:
        worker.ignore(pk)
    except (LookupError, ValueError) as e:
        messages.error(request, f"Cannot ignore: {e}.")
    else:
        messages.success(request, f"Message #{pk} is ignored; the worker will not process it again.")
    return _back(pk)
