"""REST routes of the postsales module, mounted on the shared API (``mcom.commerce.api.api``).

- ``POST /api/orders/{increment_id}/returns`` — request a return (201 with the RMA);
- ``GET /api/orders/{increment_id}/returns`` — the order's returns, newest first.

Errors: 404 unknown order; 409 postsales module disabled; 422 ``{"detail": [{"loc": ["body",
"lines", 0, "qty"], "msg": …}]}`` for a rule the request breaks (``["path", "increment_id"]`` when
the order as a whole cannot be returned, e.g. not exported yet). Authentication and write
permission are those of the shared API.

:func:`mount` adds the router once; :class:`~mcom.postsales.apps.PostsalesConfig` calls it at
app-ready, before the URLconf is built.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from ninja.errors import HttpError
from pydantic import BaseModel, ConfigDict, Field

from mcom.commerce import schemas as s
from mcom.commerce.api import api, require_write
from mcom.commerce.models import ApiToken, Order, Rma
from mcom.postsales import services

router = Router(tags=["returns"])


class ReturnLineBody(BaseModel):
    """One returned line: the order item by ``order_item_id`` (as in the order's ``items[].id``) or
    by ``sku`` when only one line has it."""

    model_config = ConfigDict(extra="forbid")

    order_item_id: int | None = Field(default=None, description="items[].id of the order")
    sku: str | None = Field(default=None, min_length=1, max_length=64)
    qty: s.Qty
    reason: str = Field(default="", max_length=255, description="default: the request's reason")
    reason_description: str = Field(default="", max_length=1000)
    condition: str = Field(default="", max_length=64)
    condition_description: str = Field(default="", max_length=1000)


class ReturnBody(BaseModel):
    """A return request for shipped lines of an exported order."""

    model_config = ConfigDict(extra="forbid")

    lines: list[ReturnLineBody] = Field(min_length=1, max_length=500)
    reason: str = Field(default="", max_length=255)
    custom_attributes: dict[str, str] = Field(
        default_factory=dict, description="extra custom attributes sent to the OMS with the request"
    )


def rma_out(rma: Rma) -> s.RmaOut:
    return s.RmaOut(
        request_id=rma.request_id, rma_number=rma.rma_number, status=rma.status, reason=rma.reason,
        tracking_number=rma.tracking_number, label_url=rma.label_url, created_at=rma.created_at,
        items=[
            s.RmaItemOut(order_item_id=i.order_item_id, sku=i.order_item.sku, qty=i.qty, reason=i.reason,
                         condition=i.condition, status=i.status)
            for i in rma.items.select_related("order_item").order_by("id")
        ],
    )


def _user(request: HttpRequest) -> str:
    principal: Any = getattr(request, "auth", None)
    if isinstance(principal, ApiToken):
        return f"api:{principal.name}"
    return str(getattr(principal, "username", "") or "api")


def _loc(loc: services.Loc) -> list[str | int]:
    return ["path", "increment_id"] if loc == ("order",) else ["body", *loc]


def _invalid(request: HttpRequest, exc: services.InvalidReturnRequest) -> HttpResponse:
    detail = [{"loc": _loc(loc), "msg": msg, "type": "value_error"} for loc, msg in exc.errors]
    return api.create_response(request, {"detail": detail}, status=422)


ERRORS: dict[int | tuple[int, ...], Any] = {
    401: s.ErrorOut, 403: s.ErrorOut, 404: s.ErrorOut, 409: s.ErrorOut, 422: s.ValidationErrorOut,
}


@router.post("/{increment_id}/returns", response={201: s.RmaOut, **ERRORS}, summary="Request a return")
def create_return(request: HttpRequest, increment_id: str, payload: ReturnBody) -> Any:
    """Request a return of shipped lines; the OMS is asked to authorize it (asynchronously).

    The RMA starts ``pending`` with a ``request_id``; its ``rma_number`` and status follow from the
    OMS's answer (``REQUESTED``, ``APPROVED``, …).
    """
    require_write(request)
    try:
        rma = services.request_return(
            order=increment_id,
            lines=[services.ReturnLineIn(**line.model_dump()) for line in payload.lines],
            reason=payload.reason,
            user=_user(request),
            custom_attributes=payload.custom_attributes,
        )
    except services.OrderNotFound as e:
        raise HttpError(404, str(e)) from None
    except services.ReturnsDisabled as e:
        raise HttpError(409, str(e)) from None
    except services.InvalidReturnRequest as e:
        return _invalid(request, e)
    return Status(201, rma_out(rma))


@router.get("/{increment_id}/returns", response={200: list[s.RmaOut], **ERRORS}, summary="Returns of an order")
def list_returns(request: HttpRequest, increment_id: str) -> list[s.RmaOut]:
    """The order's returns (RMAs), newest first."""
    order = Order.objects.filter(increment_id=increment_id).first()
    if order is None:
        raise HttpError(404, f"order {increment_id!r} not found")
    return [rma_out(r) for r in services.returns_of(order)]


_mounted = False


def mount() -> None:
    """Add :data:`router` to the shared API under ``/orders`` (once)."""
    global _mounted
    if _mounted:
        return
    api.add_router("/orders", router)
    _mounted = True
