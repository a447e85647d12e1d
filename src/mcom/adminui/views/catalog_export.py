"""Catalog export: the current task with its progress; Export now, Schedule, Cancel."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from mcom.adminui import background, report
from mcom.adminui.views.base import action, page, render_page
from mcom.catalog import services
from mcom.catalog.models import CatalogExportTask

OPEN_STATUSES = (CatalogExportTask.PENDING, CatalogExportTask.RUNNING)


def task_state(task: CatalogExportTask | None) -> dict[str, object]:
    """The task as plain data (for the page and for the JSON progress endpoint)."""
    if task is None:
        return {"id": None, "status": "none", "open": False}
    return {
        "id": task.pk,
        "status": task.display_status,
        "status_label": task.display_status.capitalize(),
        "open": task.status in OPEN_STATUSES,
        "processed": task.processed,
        "total": task.total,
        "sent": task.sent,
        "percent": round(task.percent, 1),
        "cancel_requested": task.cancel_requested,
        "error": task.error,
    }


@page
def catalog_export(request: HttpRequest) -> HttpResponse:
    task = services.current_task()
    recent = list(CatalogExportTask.objects.order_by("-id")[:10])
    return render_page(
        request,
        "adminui/catalog_export.html",
        menu="catalog_export",
        title="Catalog export",
        task=task,
        state=task_state(task),
        recent=recent,
        sync=report.product_sync(),
    )


@page
def catalog_export_status(request: HttpRequest) -> HttpResponse:
    return JsonResponse(task_state(services.current_task()))


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("mcom_admin:catalog_export"))


@action
def catalog_export_run(request: HttpRequest) -> HttpResponse:
    """Export the full catalog now: the pending task or a new one, in a background thread."""
    task = services.open_task()
    if task is not None and task.status == CatalogExportTask.RUNNING and not task.is_interrupted():
        messages.error(
            request, f"Catalog export #{task.pk} is already running; cancel it first to start over."
        )
        return _back()
    if task is None:
        try:
            task = services.schedule_export(requested_by="admin")
        except services.ExportBusy as e:
            messages.error(request, str(e))
            return _back()
    chosen = task
    background.start(
        lambda: services.run_export(chosen, requested_by="admin"), name=f"mcom-catalog-export-{chosen.pk}"
    )
    messages.success(request, f"Catalog export #{chosen.pk} started; progress is shown below.")
    return _back()


@action
def catalog_export_schedule(request: HttpRequest) -> HttpResponse:
    try:
        task = services.schedule_export(requested_by="admin")
    except services.ExportBusy as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Catalog export #{task.pk} scheduled; cron will run it.")
    return _back()


@action
def catalog_export_cancel(request: HttpRequest) -> HttpResponse:
    try:
        task = services.cancel_export()
    except services.NothingToCancel as e:
        messages.error(request, str(e).capitalize() + ".")
    else:
        if task.status == CatalogExportTask.CANCELLED:
            messages.success(request, f"Catalog export #{task.pk} cancelled.")
        else:
            messages.success(request, f"Catalog export #{task.pk} will stop after the current page.")
    return _back()
