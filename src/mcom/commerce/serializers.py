"""Model → response schema conversions of the REST API (read-only, no writes)."""

from __future__ import annotations

from mcom.commerce import schemas as s
from mcom.commerce.models import Order, Product, StockItem, StockStatus


def product_out(product: Product) -> s.ProductOut:
    items = StockItem.objects.filter(product=product).select_related("aggregate").order_by("aggregate__code")
    status = dict(StockStatus.objects.filter(product=product).values_list("aggregate_id", "stock_status"))
    stock = [
        s.StockOut(
            aggregate=i.aggregate.code, qty=i.qty, is_in_stock=i.is_in_stock,
            stock_status=status.get(i.aggregate_id), updated_at=i.updated_at,
        )
        for i in items
    ]
    return s.ProductOut(
        sku=product.sku, name=product.name, type=product.type, enabled=product.enabled, price=product.price,
        weight=product.weight, manage_stock=product.manage_stock, url_key=product.url_key,
        image_url=product.image_url, custom_attributes=product.custom_attributes,
        children_skus=list(product.children_skus), updated_at=product.updated_at, stock=stock,
    )


def stock_out(item: StockItem, stock_status: bool | None) -> s.StockOut:
    return s.StockOut(
        aggregate=item.aggregate.code, qty=item.qty, is_in_stock=item.is_in_stock,
        stock_status=stock_status, updated_at=item.updated_at,
    )


def order_out(order: Order) -> s.OrderOut:
    order = (
        Order.objects.select_related("store")
        .prefetch_related(
            "addresses", "items", "status_history", "credit_memos",
            "shipments__items__order_item", "shipments__tracks", "rmas__items__order_item",
        )
        .get(pk=order.pk)
    )
    return s.OrderOut(
        increment_id=order.increment_id, store=order.store.code, state=order.state, status=order.status,
        oms_status=order.oms_status, payment_method=order.payment_method,
        payment_authorized=order.payment_authorized, customer_email=order.customer_email,
        customer_firstname=order.customer_firstname, customer_lastname=order.customer_lastname,
        currency=order.currency, subtotal=order.subtotal, tax_amount=order.tax_amount,
        shipping_amount=order.shipping_amount, shipping_tax_amount=order.shipping_tax_amount,
        discount_amount=order.discount_amount, grand_total=order.grand_total,
        total_refunded=order.total_refunded, created_at=order.created_at,
        export_state=order.oms_export_state, export_attempts=order.oms_export_attempts,
        export_error=order.oms_export_error, exported_at=order.oms_exported_at,
        addresses=[
            s.AddressOut(
                address_type=a.address_type, firstname=a.firstname, lastname=a.lastname, street1=a.street1,
                street2=a.street2, city=a.city, region=a.region, postcode=a.postcode,
                country_id=a.country_id, telephone=a.telephone, email=a.email,
            )
            for a in sorted(order.addresses.all(), key=lambda a: a.address_type)
        ],
        items=[
            s.OrderItemOut(
                id=i.pk, parent_id=i.parent_id, sku=i.sku, name=i.name, product_type=i.product_type,
                qty_ordered=i.qty_ordered, qty_shipped=i.qty_shipped, qty_refunded=i.qty_refunded,
                qty_canceled=i.qty_canceled, qty_returned=i.qty_returned, price=i.price,
                price_incl_tax=i.price_incl_tax, tax_percent=i.tax_percent, tax_amount=i.tax_amount,
                discount_amount=i.discount_amount, row_total=i.row_total,
                row_total_incl_tax=i.row_total_incl_tax, oms_status=i.oms_status,
                custom_attributes=i.custom_attributes,
            )
            for i in order.items.all()
        ],
        shipments=[
            s.ShipmentOut(
                oms_shipment_id=sh.oms_shipment_id, source_id=sh.source_id, method=sh.method,
                shipped_at=sh.shipped_at,
                items=[s.ShipmentItemOut(order_item_id=si.order_item_id, sku=si.order_item.sku, qty=si.qty)
                       for si in sh.items.all()],
                tracks=[s.TrackOut(carrier=t.carrier, tracking_number=t.tracking_number, tracking_url=t.tracking_url)
                        for t in sh.tracks.all()],
            )
            for sh in order.shipments.all()
        ],
        credit_memos=[
            s.CreditMemoOut(
                credit_note_number=c.credit_note_number, reason=c.reason, subtotal=c.subtotal,
                tax_amount=c.tax_amount, grand_total=c.grand_total, created_at=c.created_at,
            )
            for c in order.credit_memos.all()
        ],
        rmas=[
            s.RmaOut(
                request_id=r.request_id, rma_number=r.rma_number, status=r.status, reason=r.reason,
                tracking_number=r.tracking_number, label_url=r.label_url, created_at=r.created_at,
                items=[s.RmaItemOut(order_item_id=ri.order_item_id, sku=ri.order_item.sku, qty=ri.qty,
                                    reason=ri.reason, condition=ri.condition, status=ri.status)
                       for ri in r.items.all()],
            )
            for r in order.rmas.all()
        ],
        status_history=[
            s.StatusHistoryOut(status=h.status, comment=h.comment, source=h.source, created_at=h.created_at)
            for h in order.status_history.all()
        ],
    )
