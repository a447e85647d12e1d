"""Builders of the params of the messages the sandbox sends (shapes of §8.2–§8.11)."""

from __future__ import annotations

from typing import Any

from mcom.sandbox.protocol import MAX_SNAPSHOT_SKUS, now_iso, now_plain, now_space
from mcom.sandbox.store import Line, Order
from mcom.sandbox.values import attributes, money, num, number, text

ADDRESS_FIELDS = ("reference", "address_type", "first_name", "last_name", "address1", "address2", "city",
                  "state", "zip", "country_code", "phone", "email")


def _addresses(order: Order) -> list[dict[str, Any]]:
    found = order.payload.get("addresses")
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def address(order: Order, reference: Any = None) -> dict[str, Any]:
    """The address with ``reference`` (else the first one), all §8.3 keys present."""
    candidates = _addresses(order)
    chosen = next((a for a in candidates if reference is not None and a.get("reference") == reference),
                  candidates[0] if candidates else {})
    out: dict[str, Any] = {key: chosen.get(key, "") for key in ADDRESS_FIELDS}
    out["address_type"] = out["address_type"] or "customer"
    out.update(latitude=chosen.get("latitude"), longitude=chosen.get("longitude"),
               custom_attributes=attributes(chosen.get("custom_attributes")))
    return out


def shipping_address(order: Order) -> dict[str, Any]:
    goods = [ln for ln in order.lines if not ln.is_shipping]
    ref = goods[0].payload.get("shipping_address_reference") if goods else None
    return address(order, ref)


def billing_address(order: Order) -> dict[str, Any]:
    payments = order.payload.get("payments")
    ref = None
    if isinstance(payments, list) and payments and isinstance(payments[0], dict):
        txs = payments[0].get("transactions")
        if isinstance(txs, list) and txs and isinstance(txs[0], dict):
            ref = txs[0].get("billing_address_reference")
    return address(order, ref)


def amount(line: Line, factor: float = 1.0) -> dict[str, Any]:
    """The line's ``amount`` with numbers (scaled by ``factor`` for partial quantities)."""
    raw = line.payload.get("amount")
    src: dict[str, Any] = raw if isinstance(raw, dict) else {}
    out = dict(src)
    for key in ("net_amount", "gross_amount", "tax_amount"):
        out[key] = money(num(src.get(key)) * factor)
    out["tax_rate"] = num(src.get("tax_rate"))
    out.setdefault("currency", "")
    taxes = src.get("taxes")
    out["taxes"] = [{**t, "amount": money(num(t.get("amount")) * factor), "rate": num(t.get("rate"))}
                    for t in taxes if isinstance(t, dict)] if isinstance(taxes, list) else []
    return out


def shipping_method(order: Order) -> str:
    ship = next((ln for ln in order.lines if ln.is_shipping), None)
    return ship.sku if ship else "STANDARD"


def _item(line: Line, status: str, reason: str, quantity: float | None = None) -> dict[str, Any]:
    p = line.payload
    item = {
        "order_line_id": line.line_id, "order_line_number": line.line_number, "sku": line.sku,
        "name": text(p.get("product_name")), "item_type": line.product_type, "image_url": text(p.get("image_url")),
        "product_url": text(p.get("product_url")),
        "custom_details": [{"name": a["name"], "value": a["value"]} for a in attributes(p.get("custom_attributes"))],
        "order_line_price": amount(line), "status": status, "status_reason": reason,
    }
    if quantity is not None:
        item["quantity"] = number(quantity)
    return item


def _aggregated(shipped: list[tuple[Line, float]]) -> list[dict[str, Any]]:
    return [{"aggregated_line_id": str(i), "sku": ln.sku, "quantity": number(qty), "order_lines": [ln.line_id]}
            for i, (ln, qty) in enumerate(shipped, 1)]


def shipment_done(order: Order, shipped: list[tuple[Line, float]], *, shipment_id: str, source_id: str,
                  carrier: str, tracking_number: str, tracking_link: str) -> dict[str, Any]:
    """``customer_shipment_done`` params (§8.3): one package holding the shipped lines."""
    return {"shipment": {
        "shipment_id": shipment_id, "order_id": order.id, "store_id": order.store, "source_id": source_id,
        "method": shipping_method(order), "shipment_date": now_space(), "address": shipping_address(order),
        "items": [_item(ln, "SHIPPED", "OSREPORT", qty) for ln, qty in shipped],
        "packages": [{
            "id": "1", "carrier": carrier, "tracking_number": tracking_number, "tracking_link": tracking_link,
            "tracking_comment": "", "details": [], "items": [ln.line_number for ln, _ in shipped],
            "aggregated_items": _aggregated(shipped),
        }],
    }}


def order_updated(order: Order) -> dict[str, Any]:
    """``order_management.updated`` params (§8.2): the create payload with current statuses."""
    lines = [_updated_line(ln) for ln in order.lines]
    shipped_by_ref: dict[str, float] = {}
    payments_in = order.payload.get("payments")
    payments = [p for p in payments_in if isinstance(p, dict)] if isinstance(payments_in, list) else []
    first_ref = text(payments[0].get("reference")) if payments else ""
    for ln in order.lines:
        if ln.status == "SHIPPED":
            ref = text(ln.payload.get("payment_reference")) or first_ref
            shipped_by_ref[ref] = shipped_by_ref.get(ref, 0.0) + num(amount(ln)["gross_amount"])
    out_payments = []
    for pay in payments:
        txs = pay.get("transactions")
        total = money(shipped_by_ref.get(text(pay.get("reference")), 0.0))
        out_payments.append({**pay, "transactions": [
            {**t, "amount": total} if i == 0 else t
            for i, t in enumerate(txs if isinstance(txs, list) else []) if isinstance(t, dict)]})
    return {"order": {
        **order.payload, "status": order.status, "status_reason": order.status_reason,
        "status_date": order.status_date, "custom_attributes": attributes(order.payload.get("custom_attributes")),
        "payments": out_payments, "lines": lines,
    }}


def _updated_line(line: Line) -> dict[str, Any]:
    line_amount = amount(line)
    payments = []
    if line.status == "SHIPPED":
        payments.append({
            "currency": line_amount["currency"], "gross_amount": line_amount["gross_amount"],
            "net_amount": line_amount["net_amount"], "tax_amount": line_amount["tax_amount"],
            "tax_rate": line_amount["tax_rate"], "taxes": line_amount["taxes"],
            "payment_reference": text(line.payload.get("payment_reference")),
            "status": "CAPTURE_REQUESTED", "status_date": line.status_date,
        })
    return {
        **line.payload, "id": line.line_id, "line_number": line.line_number, "sku": line.sku,
        "product_type": line.product_type, "status": line.status, "status_reason": line.status_reason,
        "status_date": line.status_date, "quantity": number(line.quantity),
        "quantity_shipped": number(line.qty_shipped), "quantity_cancelled": number(line.qty_cancelled),
        "amount": line_amount, "custom_attributes": attributes(line.payload.get("custom_attributes")),
        "payments": payments,
    }


def stock_snapshots(aggregate_id: str, mode: str, items: list[dict[str, Any]],
                    created_on: str | None) -> list[dict[str, Any]]:
    """One ``aggregate_stock_management.updated`` params per ≤ 10,000 SKUs (§8.4); at least one."""
    created = created_on or now_plain()
    stock = []
    for item in items:
        q = item.get("quantity")
        # numbers as numbers; anything else only reaches here through the malformed_next fault switch
        entry: dict[str, Any] = {"sku": text(item.get("sku")),
                                 "quantity": number(num(q)) if isinstance(q, int | float) and not isinstance(q, bool) else q}
        if "unlimited" in item:
            entry["unlimited"] = bool(item["unlimited"])
        stock.append(entry)
    chunks = [stock[i:i + MAX_SNAPSHOT_SKUS] for i in range(0, len(stock), MAX_SNAPSHOT_SKUS)] or [[]]
    return [{"snapshot": {"aggregate_id": aggregate_id, "created_on": created, "mode": mode, "stock": chunk}}
            for chunk in chunks]


def return_updated(rma: dict[str, Any], status: str) -> dict[str, Any]:
    """``return_management.updated`` params (§8.8) for an RMA row."""
    ret = rma["payload"]
    state = {"code": status, "name": status, "date": now_iso(), "reason_code": "CSRREQUEST"}
    return {"return": {
        "rma": rma["rma"], "order_id": rma["order_id"], "sales_channel_id": text(ret.get("sales_channel_id")),
        "source_id": text(ret.get("source_id")),
        "return_tracking_carrier": text(ret.get("return_tracking_carrier")),
        "return_tracking_number": text(ret.get("return_tracking_number")),
        "return_tracking_label_url": text(ret.get("return_tracking_label_url")),
        "return_tracking_url": text(ret.get("return_tracking_url")),
        "custom_attributes": attributes(ret.get("custom_attributes")), "status": state,
        "lines": [{
            "id": ln["id"], "line_number": ln["line_number"], "sku": ln["sku"], "reason": text(ln.get("reason")),
            "reason_description": text(ln.get("reason_description")), "status": status,
            "custom_attributes": attributes(ln.get("custom_attributes")),
        } for ln in ret.get("lines", [])],
    }}


def refund_updated(rma: dict[str, Any], order: Order, *, credit_note_number: str, status: str) -> dict[str, Any]:
    """``refund_management.updated`` params (§8.9); amounts from the order's line amounts."""
    ret = rma["payload"]
    lines = []
    for rline in ret.get("lines", []):
        oline = order.line(text(rline.get("id")))
        if oline is None:
            continue
        factor = min(1.0, num(rline.get("quantity"), oline.quantity) / oline.quantity) if oline.quantity else 1.0
        a = amount(oline, factor)
        lines.append({
            "order_item_id": oline.line_id, "order_line": oline.line_number, "sku": oline.sku,
            "reason": text(rline.get("reason")), "reason_description": text(rline.get("reason_description")),
            "payments": [{
                "details": {"cost_gross": a["gross_amount"], "cost_net": a["net_amount"],
                            "cost_vat": a["tax_amount"], "vat_rate": a["tax_rate"], "currency": a["currency"],
                            "vat_detail": [{"type": "VAT", "amount": a["tax_amount"], "rate": a["tax_rate"]}]},
                "status": {"code": "REFUNDED", "name": "REFUNDED"},
            }],
        })
    return {"refund": {
        "rma": rma["rma"], "order_id": rma["order_id"], "sales_channel_id": text(ret.get("sales_channel_id")),
        "store_id": text(ret.get("source_id")), "credit_note_number": credit_note_number,
        "credit_note_date": now_iso(), "refund_reason": "RELEASESUCCESS", "refund_type": "Return",
        "user": "LOGISTICS", "custom_attributes": [],
        "status": {"code": status, "name": status, "date": now_iso(), "reason_code": "REQUESTED",
                   "reason_name": "REQUESTED"},
        "lines": lines,
    }}


def shipping_details_request(order: Order, lines: list[Line], *, source_id: str, carrier: str) -> dict[str, Any]:
    """``carrier_management.request_shipping_details`` params (§8.10): one package, empty tracking."""
    pending = [(ln, ln.remaining) for ln in lines]
    return {"shipment": {
        "store_id": order.store, "order_id": order.id, "source_id": source_id, "method": shipping_method(order),
        "address": shipping_address(order),
        "items": [_item(ln, "ASSIGNED", "ASSIGNED", qty) | {"item_type": "PHYSICAL"} for ln, qty in pending],
        "packages": [{
            "id": "1", "carrier": carrier,
            "details": {"name": "box", "length": 30, "width": 20, "height": 10, "dimensions_unit": "cm",
                        "weight": 1, "weight_unit": "kg"},
            "items": [ln.line_id for ln, _ in pending], "aggregated_items": _aggregated(pending),
            "tracking_number": "", "tracking_link": "", "tracking_comment": "",
        }],
    }}


def shipment_request(order: Order, lines: list[Line], *, source_id: str, request_id: str) -> dict[str, Any]:
    """``warehouse_management.request_shipment`` params (§8.11; not wrapped in a key)."""
    p = order.payload
    customer = p.get("customer") if isinstance(p.get("customer"), dict) else {}
    pending = [(ln, ln.remaining) for ln in lines]
    now = now_iso()
    return {
        "request_id": request_id, "sales_channel": order.store, "order_id": order.id, "source_id": source_id,
        "shipping_address": shipping_address(order), "billing_address": billing_address(order),
        "custom_details": [{"name": a["name"], "value": a["value"]} for a in attributes(p.get("custom_attributes"))],
        "items": [_item(ln, "NEW", "ITEM_PENDING_PICKING", qty) for ln, qty in pending],
        "aggregated_items": _aggregated(pending), "created": order.created_at,
        "customer_id": text(customer.get("id") if customer else ""), "customer_reference": order.id,
        "language": text(p.get("language")), "vat_country": text(p.get("vat_country")),
        "request_created_at": now,
    }


def source_item(source: dict[str, Any]) -> dict[str, Any]:
    """One item of the ``source_repository.search`` result (§8.5)."""
    return {
        "id": source["id"], "name": source["name"], "type": source["type"], "timezone": "UTC",
        "aggregate_ids": source["aggregate_ids"], "address": source["address"],
        "configurations": {"capabilities": {"fulfillment": {"can_ship_to_source": False}},
                           "services": [], "shipping": []},
    }
