"""REST intake for the storefront / ERP side (django-ninja; OpenAPI at /api/openapi.json, docs at /api/docs).

Every route needs authentication (:data:`auth`: bearer token or HTTP Basic with an admin user);
writes also pass :func:`require_write`. Errors:

- 422 ``{"detail": [{"loc": ["body", "lines", 0, "sku"], "msg": "...", "type": "..."}]}`` for
  schema and business validation (unknown sku, unknown store, …), always naming the field;
- 409 ``{"detail": "..."}`` when a guard refuses a local change (exported order, OMS-owned stock);
- 404 ``{"detail": "..."}`` for an unknown order, product or aggregate; 401 / 403 for auth.

Other modules add their routes with ``api.add_router("/prefix", router)`` in their
``AppConfig.ready()``; routers inherit :data:`auth`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Router
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status
from pydantic import ValidationError as PydanticValidationError

from mcom import __version__, jsonguard
from mcom.commerce import hooks, services
from mcom.commerce import schemas as s
from mcom.commerce.api_auth import AdminBasicAuth, TokenAuth, auth, require_write
from mcom.commerce.models import Order, Product, StockAggregate, StockStatus
from mcom.commerce.serializers import order_out, product_out, stock_out

__all__ = ["AdminBasicAuth", "TokenAuth", "api", "auth", "require_write"]

BODY_PARAM = "payload"  # every body parameter has this name; it is dropped from error locations

api = NinjaAPI(
    title="mcom REST API",
    version=__version__,
    description="Orders, products and stock intake of the mcom OMS Connector.",
    urls_namespace="mcom_api",
    auth=auth,
)

ERRORS: dict[int | tuple[int, ...], Any] = {
    400: s.ErrorOut, 401: s.ErrorOut, 403: s.ErrorOut, 422: s.ValidationErrorOut, 429: s.ErrorOut,
}


def _field_errors(request: HttpRequest, errors: list[dict[str, Any]]) -> HttpResponse:
    return api.create_response(request, {"detail": errors}, status=422)


@api.exception_handler(NinjaValidationError)
def _on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for err in exc.errors:
        loc = list(err.get("loc", ()))
        if len(loc) > 1 and loc[0] == "body" and loc[1] == BODY_PARAM:
            loc.pop(1)
        loc += (err.get("ctx") or {}).get("path", [])  # an unstorable value deep inside (schemas.refuse_unstorable)
        errors.append({"loc": loc, "msg": err.get("msg", "invalid"), "type": err.get("type", "value_error")})
    return _field_errors(request, errors)


@api.exception_handler(services.FieldError)
def _on_field_error(request: HttpRequest, exc: services.FieldError) -> HttpResponse:
    return _field_errors(
        request, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"} for loc, msg in exc.errors]
    )


@api.exception_handler(hooks.ChangeRefused)
def _on_refused(request: HttpRequest, exc: hooks.ChangeRefused) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=409)


def _storable_key(value: str) -> bool:
    """A path key that could be stored at all (no NUL / lone surrogate); others name nothing."""
    return jsonguard.bad_string(value) is None


def _order(increment_id: str) -> Order:
    order = Order.objects.filter(increment_id=increment_id).first() if _storable_key(increment_id) else None
    if order is None:
        raise HttpError(404, f"order {increment_id!r} not found")
    return order


def _product(sku: str) -> Product:
    product = Product.objects.filter(sku=sku).first() if _storable_key(sku) else None
    if product is None:
        raise HttpError(404, f"product {sku!r} not found")
    return product


# ------------------------------------------------------------------------------------- orders

orders = Router(tags=["orders"])


@orders.post("", response={201: s.OrderOut, **ERRORS}, summary="Place an order")
def create_order(request: HttpRequest, payload: s.OrderIn) -> Status[s.OrderOut]:
    """Place an order; totals are computed from the lines (see the schema)."""
    require_write(request)
    order = services.place_order(payload)
    return Status(201, order_out(order))


@orders.get("/{increment_id}", response={200: s.OrderOut, 404: s.ErrorOut, **ERRORS}, summary="Order state")
def get_order(request: HttpRequest, increment_id: str) -> s.OrderOut:
    """The order with its status, OMS export state, items, shipments, credit memos and returns."""
    return order_out(_order(increment_id))


@orders.post(
    "/{increment_id}/status",
    response={200: s.OrderOut, 404: s.ErrorOut, 409: s.ErrorOut, **ERRORS},
    summary="Change the order status (local)",
)
def change_status(request: HttpRequest, increment_id: str, payload: s.StatusChangeIn) -> s.OrderOut:
    """A local status change; 409 when refused (e.g. the order is exported: the OMS owns its status)."""
    require_write(request)
    order = services.change_order_status(_order(increment_id), payload.status, comment=payload.comment)
    return order_out(order)


# ------------------------------------------------------------------------------------- products

products = Router(tags=["products"])


@products.post("/bulk", response={200: s.UpsertOut, **ERRORS}, summary="Upsert many products")
def upsert_bulk(request: HttpRequest, payload: s.ProductsBulkIn) -> s.UpsertOut:
    """Create or update up to 10,000 products by sku in one transaction."""
    require_write(request)
    try:
        result = services.upsert_products(payload.items)
    except services.FieldError as e:
        raise e.prefixed("items") from None
    return s.UpsertOut(created=result.created, updated=result.updated, skus=result.skus)


@products.put("/{sku}", response={200: s.ProductOut, **ERRORS}, summary="Create or update a product")
def upsert_one(request: HttpRequest, sku: str, payload: s.ProductPutIn) -> s.ProductOut:
    require_write(request)
    try:
        item = s.ProductIn(sku=sku, **payload.model_dump())
    except PydanticValidationError as e:
        return _field_errors(  # type: ignore[return-value]
            request, [{"loc": ["path", "sku"], "msg": err["msg"], "type": err["type"]} for err in e.errors()]
        )
    try:
        services.upsert_products([item])
    except services.FieldError as e:
        raise services.FieldError([(loc[1:], msg) for loc, msg in e.errors]) from None
    return product_out(_product(sku))


@products.get("/{sku}", response={200: s.ProductOut, 404: s.ErrorOut, **ERRORS}, summary="A product with its stock")
def get_product(request: HttpRequest, sku: str) -> s.ProductOut:
    return product_out(_product(sku))


# ------------------------------------------------------------------------------------- stock

stock = Router(tags=["stock"])


@stock.put(
    "/{sku}/{aggregate}",
    response={200: s.StockOut, 404: s.ErrorOut, 409: s.ErrorOut, **ERRORS},
    summary="Set the quantity of a product in a stock aggregate (local edit)",
)
def put_stock(request: HttpRequest, sku: str, aggregate: str, payload: s.StockIn) -> s.StockOut:
    """A local stock edit; 409 when stock belongs to the OMS (production mode)."""
    require_write(request)
    product = _product(sku)
    agg = StockAggregate.objects.filter(code=aggregate).first() if _storable_key(aggregate) else None
    if agg is None:
        raise HttpError(404, f"stock aggregate {aggregate!r} not found")
    item = services.set_stock(product, agg, payload.qty)
    status = StockStatus.objects.filter(product=product, aggregate=agg).values_list("stock_status", flat=True).first()
    return stock_out(item, status)


api.add_router("/orders", orders)
api.add_router("/products", products)
api.add_router("/stock", stock)
