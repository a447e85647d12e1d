"""Configuration: every ``mcom/*`` path (and ``web/base_url``) per scope, like Stores > Configuration."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from mcom.adminui import permissions
from mcom.adminui.forms import ConfigForm
from mcom.adminui.views.base import form_page, render_page
from mcom.commerce import config
from mcom.commerce.models import Store


def _scope_url(store: Store | None) -> str:
    url = reverse("mcom_admin:configuration")
    return f"{url}?store={store.code}" if store else url


@form_page
def configuration(request: HttpRequest) -> HttpResponse:
    stores = list(Store.objects.all())
    code = request.GET.get("store", "")
    store = next((s for s in stores if s.code == code), None)
    if code and store is None:
        messages.error(request, f"Unknown store {code!r}; showing the default scope.")
    form = ConfigForm(request.POST or None, store=store)
    if not permissions.can_act(request.user):
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                changed = form.save()
        except config.ConfigPathError as e:
            form.add_error(None, str(e))
        else:
            where = f"store “{store.code}”" if store else "the default scope"
            if changed:
                messages.success(request, f"Configuration saved for {where}: {', '.join(changed)}.")
            else:
                messages.info(request, f"Nothing changed in {where}.")
            return HttpResponseRedirect(_scope_url(store))
    return render_page(
        request,
        "adminui/configuration.html",
        menu="configuration",
        title="Configuration",
        form=form,
        stores=stores,
        store=store,
        scope_label=f"Store view: {store.name} ({store.code})" if store else "Default config",
    )
