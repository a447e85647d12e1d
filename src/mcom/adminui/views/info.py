"""Read-only information pages: change log, system report, connector log."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from mcom import envconfig, instance
from mcom.adminui import changelog as changelog_file
from mcom.adminui import logtail, report
from mcom.adminui.forms import LogFilterForm
from mcom.adminui.views.base import page, render_page
from mcom.service_bus.models import LoggedMessage


@page
def changelog(request: HttpRequest) -> HttpResponse:
    return render_page(
        request, "adminui/changelog.html", menu="changelog", title="Change log", log=changelog_file.load()
    )


@page
def system_report(request: HttpRequest) -> HttpResponse:
    cfg = envconfig.current()
    return render_page(
        request,
        "adminui/system_report.html",
        menu="system_report",
        title="System report",
        platform=report.platform_info(),
        modules=report.modules(),
        database=report.database(),
        queue=report.queue_depth(),
        statuses=LoggedMessage.STATUSES,
        cron=report.cron_rows(),
        instance_root=str(instance.root()),
        plugins=cfg.plugins,
    )


@page
def connector_log(request: HttpRequest) -> HttpResponse:
    form = LogFilterForm(request.GET or None)
    level, lines, entity = "", logtail.DEFAULT_LINES, ""
    if form.is_valid():
        level = form.cleaned_data.get("level") or ""
        lines = form.cleaned_data.get("lines") or logtail.DEFAULT_LINES
        entity = form.cleaned_data.get("entity") or ""
    path = instance.log_file()
    return render_page(
        request,
        "adminui/connector_log.html",
        menu="connector_log",
        title="Connector log",
        form=form,
        records=logtail.tail(lines=lines, min_level=level, path=path, contains=entity),
        entity=entity,
        log_path=str(path),
        log_exists=path.is_file(),
        lines=lines,
    )
