"""The MCOM landing page: links to every page, 24 h activity chart, queue and registration state."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from mcom.adminui import chart, report
from mcom.adminui.menu import MENU
from mcom.adminui.views.base import page, render_page
from mcom.catalog import services as catalog_services
from mcom.service_bus import integration
from mcom.service_bus.models import LoggedMessage, Registration


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    counts = report.status_counts()
    return render_page(
        request,
        "adminui/dashboard.html",
        menu="dashboard",
        title="MCOM dashboard",
        pages=[item for item in MENU if item.name != "dashboard"],
        chart=chart.build(report.hourly_activity(24)),
        status_counts=[(code, label, counts.get(code, 0)) for code, label in LoggedMessage.STATUSES],
        last_registration=Registration.objects.first(),
        export_task=catalog_services.current_task(),
        platform=report.platform_info(),
        attention=report.attention(),
        integration=integration.state(),
    )
