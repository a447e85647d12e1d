"""Commerce Admin of the post-sales module: what the OMS said about refunds (read-only) and the
**Request return** page of an order (``<order id>/request-return/``).

The return page plugs into the order admin through
:data:`mcom.commerce.admin.order_admin_extensions` (commerce imports no connector module). Its
button is offered on an exported order with at least one unit left to return
(:func:`mcom.postsales.services.returnable_qty`), to users who may change orders *and* act in the
MCOM section; the page itself checks the same (403 otherwise). Credit memo reasons are shown as
words (:data:`REFUND_REASONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from mcom.adminui.permissions import can_act
from mcom.commerce import admin as commerce_admin
from mcom.commerce.models import Order, OrderItem
from mcom.postsales import services as postsales
from mcom.postsales.lines import LinesUnavailable, order_lines
from mcom.postsales.models import OmsRefund

#: OMS refund reason codes (``refund_reason``/``refund_type``) in words
REFUND_REASONS: dict[str, str] = {
    "RELEASESUCCESS": "Refund released",
    "RETURN": "Return",
    "CANCELLED": "Order canceled",
    "CANCELED": "Order canceled",
    "CSRREQUEST": "Customer service request",
    "PENDINGRELEASE": "Refund pending release",
}


def refund_reason_words(code: str) -> str:
    """``RELEASESUCCESS`` → ``Refund released (RELEASESUCCESS)``; an unknown code → empty (shown as is)."""
    words = REFUND_REASONS.get(code.strip().upper().replace(" ", ""))
    return f"{words} ({code})" if words else ""


@admin.register(OmsRefund)
class OmsRefundAdmin(admin.ModelAdmin[OmsRefund]):
    list_display = ("order", "rma_number", "credit_note_number", "status", "reason_words", "credit_memo", "updated_at")
    search_fields = ("order__increment_id", "rma_number", "credit_note_number")
    list_filter = ("status",)
    list_select_related = ("order", "credit_memo")
    readonly_fields = ("order", "rma", "rma_number", "credit_note_number", "status", "status_date", "refund_reason",
                       "refund_type", "credit_memo", "payload", "created_at", "updated_at")

    @admin.display(description="Reason", ordering="refund_reason")
    def reason_words(self, obj: OmsRefund) -> str:
        return refund_reason_words(obj.refund_reason) or obj.refund_reason

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ------------------------------------------------------------------------------ request a return


class ReturnRequestForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=255, label="Return reason",
        help_text="Sent to the OMS; the default reason of every line that has none.",
    )


class ReturnLineForm(forms.Form):
    qty = forms.IntegerField(required=False, min_value=0, initial=0, label="Qty to return",
                             widget=forms.NumberInput(attrs={"min": 0, "step": 1, "style": "width: 5em"}))
    reason = forms.CharField(required=False, max_length=255, label="Reason")
    condition = forms.CharField(required=False, max_length=64, label="Condition",
                                widget=forms.TextInput(attrs={"list": "mcom-return-conditions", "size": 12}))


#: suggestions for the condition field (the OMS takes the value verbatim)
RETURN_CONDITIONS = ("NEW", "OPENED", "USED", "DAMAGED", "DEFECTIVE")


@dataclass
class ReturnLine:
    """One shipped item on the Request return page, with its form (prefix ``line-<item id>``)."""

    item: OrderItem
    returnable: Decimal
    form: ReturnLineForm


def may_request_return(order_admin: admin.ModelAdmin[Order], request: HttpRequest, order: Order | None) -> bool:
    """Changing orders and acting in the MCOM section are both needed to request a return."""
    return bool(order_admin.has_change_permission(request, order)) and can_act(request.user)


def has_returnable_units(order: Order) -> bool:
    """The order is open and at least one shipped unit is neither returned nor held by a return."""
    if order.state in (Order.STATE_CLOSED, Order.STATE_CANCELED):
        return False
    shipped = OrderItem.objects.filter(order=order, qty_shipped__gt=0)
    return any(postsales.returnable_qty(item) > 0 for item in shipped)


def _tools(order_admin: admin.ModelAdmin[Order], request: HttpRequest, order: Order) -> list[commerce_admin.OrderTool]:
    if not order.is_exported or not may_request_return(order_admin, request, order) or not has_returnable_units(order):
        return []
    url = reverse(f"{order_admin.admin_site.name}:commerce_order_request_return", args=[quote(order.pk)])
    return [commerce_admin.OrderTool("Request return", url, "mcom-request-return")]


def _urls(order_admin: admin.ModelAdmin[Order]) -> list[URLPattern]:
    def view(request: HttpRequest, object_id: str) -> HttpResponse:
        return request_return_view(order_admin, request, object_id)

    return [path("<path:object_id>/request-return/", order_admin.admin_site.admin_view(view),
                 name="commerce_order_request_return")]


def request_return_view(order_admin: admin.ModelAdmin[Order], request: HttpRequest, object_id: str) -> HttpResponse:
    """Request a return of shipped lines (``postsales.services.request_return``); 403 without the rights."""
    order = order_admin.get_object(request, unquote(object_id))
    if order is None:
        raise Http404(f"order {object_id} not found")
    if not may_request_return(order_admin, request, order):
        raise PermissionDenied
    site = order_admin.admin_site.name
    change_url = reverse(f"{site}:commerce_order_change", args=[quote(order.pk)])
    if not order.is_exported:
        messages.error(request, f"Order {order} has not been exported to the OMS yet: "
                                "a return can be requested once it is exported and shipped.")
        return HttpResponseRedirect(change_url)
    try:
        items = [i for i in order_lines(order).items if i.qty_shipped > 0]
    except LinesUnavailable as e:
        messages.error(request, f"Order {order} cannot be returned: {e}")
        return HttpResponseRedirect(change_url)
    if not items:
        messages.error(request, f"Order {order} has no shipped lines to return.")
        return HttpResponseRedirect(change_url)

    data = request.POST if request.method == "POST" else None
    header = ReturnRequestForm(data)
    lines = [
        ReturnLine(item=item, returnable=postsales.returnable_qty(item), form=ReturnLineForm(data, prefix=f"line-{item.pk}"))
        for item in items
    ]
    for line in lines:
        for field in line.form.fields.values():
            field.widget.attrs["aria-label"] = f"{field.label} of {line.item.sku} (item {line.item.pk})"
    valid = [header.is_valid(), *(line.form.is_valid() for line in lines)] if data is not None else [False]
    if all(valid):
        sent = [line for line in lines if line.form.cleaned_data.get("qty")]
        request_lines = [
            postsales.ReturnLineIn(
                qty=Decimal(line.form.cleaned_data["qty"]), order_item_id=line.item.pk,
                reason=line.form.cleaned_data.get("reason") or "",
                condition=line.form.cleaned_data.get("condition") or "",
            )
            for line in sent
        ]
        try:
            rma = postsales.request_return(
                order=order, lines=request_lines, reason=header.cleaned_data.get("reason") or "",
                user=request.user.get_username(),
            )
        except postsales.InvalidReturnRequest as e:
            for loc, msg in e.errors:
                _return_error(header, sent, loc, msg)
        except postsales.ReturnError as e:  # disabled module, order gone
            header.add_error(None, str(e))
        else:
            units = int(sum((ln.qty for ln in request_lines), Decimal(0)))
            messages.success(request, f"Return requested for order {order}: request id {rma.request_id} "
                                      f"({units} unit{'s' if units != 1 else ''}). It is queued for the OMS, "
                                      "which will assign the RMA number.")
            return HttpResponseRedirect(change_url)
    context = {
        **order_admin.admin_site.each_context(request),
        "opts": order_admin.opts,
        "app_label": order_admin.opts.app_label,
        "title": f"Request return for order {order}",
        "order": order,
        "change_url": change_url,
        "header": header,
        "lines": lines,
        "conditions": RETURN_CONDITIONS,
        "has_errors": bool(header.errors) or any(line.form.errors for line in lines),
    }
    return TemplateResponse(request, "admin/postsales/request_return.html", context)


def _return_error(header: ReturnRequestForm, sent: list[ReturnLine], loc: tuple[str | int, ...], msg: str) -> None:
    """Put an ``InvalidReturnRequest`` problem next to its line (``("lines", i, field)``) or on top."""
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and loc[1] < len(sent):
        form = sent[loc[1]].form
        field = loc[2] if len(loc) > 2 and loc[2] in form.fields else "qty"
        form.add_error(str(field), msg)
        return
    header.add_error(None, msg if loc in (("order",), ("lines",)) else f"{'.'.join(map(str, loc))}: {msg}")


_EXTENSION = commerce_admin.OrderAdminExtension(urls=_urls, tools=_tools)
if _EXTENSION not in commerce_admin.order_admin_extensions:
    commerce_admin.order_admin_extensions.append(_EXTENSION)
if refund_reason_words not in commerce_admin.credit_memo_reason_labels:
    commerce_admin.credit_memo_reason_labels.append(refund_reason_words)
