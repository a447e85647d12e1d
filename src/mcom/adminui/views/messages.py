"""Message log: the ``mcom_logged_messages_queue`` table with filters, payloads, retry and ignore
(one message, or the selected ones: Actions > Retry / Ignore), timings and the attempt history."""

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
RETRYABLE = (LoggedMessage.ERROR, LoggedMessage.RETRY, LoggedMessage.IGNORED)  # = log.RETRYABLE
IGNORABLE = (LoggedMessage.NEW, LoggedMessage.RETRY, LoggedMessage.ERROR)  # = log.IGNORABLE


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
        retryable=RETRYABLE,
        ignorable=IGNORABLE,
    )


@page
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from mcom.observability import attempts

    msg = get_object_or_404(LoggedMessage, pk=pk)
    known = secrets()
    history = attempts.history(msg.pk)
    for attempt in history:
        attempt.error, attempt.trace = redact(attempt.error, known), redact(attempt.trace, known)
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
        timing=timing(msg),
        history=history,
    )


def timing(msg: LoggedMessage) -> str:
    """How long the message took from queued (or received) to sent (or applied), in words."""
    if msg.processed_at is None:
        return ""
    seconds = max((msg.processed_at - msg.created_at).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


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


#: messages one mass action may change (a page holds PER_PAGE; "select all" is not offered)
MAX_SELECTED = 500


@action
def message_mass_action(request: HttpRequest) -> HttpResponse:
    """Retry or ignore the selected messages (``ids``): one conditional update per chunk
    (``log.bulk_retry``/``log.bulk_ignore``, the same as ``mcom oms:queue:retry``/``ignore``).

    Messages in a status the action does not apply to, or in flight, are skipped and counted.
    """
    from mcom.service_bus import log as message_log
    from mcom.service_bus.selection import MessageFilter

    back = str(request.POST.get("next", ""))
    target = back if back.startswith(reverse("mcom_admin:messages")) else reverse("mcom_admin:messages")
    verb = str(request.POST.get("action", ""))
    if verb not in ("retry", "ignore"):
        messages.error(request, "Choose an action: Retry or Ignore.")
        return HttpResponseRedirect(target)
    ids = sorted({int(v) for v in request.POST.getlist("ids") if v.isdigit()})[:MAX_SELECTED]
    if not ids:
        messages.error(request, "Select at least one message.")
        return HttpResponseRedirect(target)
    selection = MessageFilter(ids=ids)
    outcome = (message_log.bulk_retry if verb == "retry" else message_log.bulk_ignore)(selection)
    done, skipped = outcome.changed, len(ids) - outcome.changed
    past = "queued for retry" if verb == "retry" else "ignored"
    text = f"{done} message{'s' if done != 1 else ''} {past}."
    if skipped:
        text += f" {skipped} skipped (not in a status that allows it, or being processed)."
    (messages.success if done else messages.warning)(request, text)
    return HttpResponseRedirect(target)
