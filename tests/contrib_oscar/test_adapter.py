"""The django-oscar adapter against the real Oscar package and the sandbox OMS over real HTTP.

Every test places its order through Oscar's ``OrderCreator`` (which sends ``order_placed``), lets
mcom export it to the sandbox, makes the sandbox act (ship, cancel, stock, refund) and asserts the
outcome in Oscar's own tables.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from oscar.apps.order.signals import order_placed

from mcom.catalog import export
from mcom.commerce.models import Order, OrderItem, Product
from mcom.contrib.oscar import jobs, mirror, project
from mcom.contrib.oscar.models import OrderLink
from mcom.postsales import services as postsales
from mcom.sales import jobs as sales_jobs
from mcom.service_bus import methods, worker

from .conftest import CHANNEL, PlaceOscar, oscar_model, until


def creates_of(oms: Any, number: str) -> list[dict[str, Any]]:
    entries = oms.journal(method=methods.ORDER_CREATE, direction="incoming", limit=1000)
    return [e for e in entries if (e.get("payload") or {}).get("params", {}).get("order", {}).get("id") == number]


def exported(oms: Any, place_oscar: PlaceOscar, lines: dict[str, int]) -> Any:
    oscar = place_oscar(lines)
    until(lambda: Order.objects.get(increment_id=oscar.number).is_exported)
    return oscar


def test_oscar_order_is_mirrored_and_exported_once_with_the_stores_channel(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = place_oscar({"MUG": 2, "TSHIRT-S": 1})
    link = OrderLink.objects.get(oscar_order_id=oscar.pk)
    order = link.order
    assert order is not None
    assert order.increment_id == oscar.number
    assert order.store.code == "oscar"
    assert order.payment_authorized
    assert order.customer_email == "ada@example.com"
    items = {i.sku: i for i in OrderItem.objects.filter(order=order)}
    assert {s: i.qty_ordered for s, i in items.items()} == {"MUG": Decimal(2), "TSHIRT-S": Decimal(1)}
    assert items["MUG"].price == Decimal("9.50")
    lines = {ln.partner_sku: ln for ln in oscar.lines.all()}
    assert items["MUG"].custom_attributes["oscar_line_id"] == lines["MUG"].pk
    # synchronous mode of the store: sent while placed; the sandbox has it under the store's channel
    until(lambda: Order.objects.get(pk=order.pk).is_exported)
    stored = oms.order(oscar.number)
    assert stored["store"] == CHANNEL
    assert sorted(ln["sku"] for ln in stored["lines"] if ln["product_type"] == "PHYSICAL") == ["MUG", "MUG", "TSHIRT-S"]

    # the signal again, the catch-up job, an export pass: still one mirror and one create at the OMS
    order_placed.send(sender=None, order=oscar, user=None)
    assert mirror.mirror_missing() == 0
    sales_jobs.export_orders()
    worker.run_until_idle()
    assert OrderLink.objects.filter(oscar_order_id=oscar.pk).count() == 1
    assert Order.objects.filter(increment_id=oscar.number).count() == 1
    assert len(creates_of(oms, oscar.number)) == 1


def test_order_the_signal_missed_is_mirrored_by_cron(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = place_oscar({"POSTER": 1})
    # as if the process had stopped between Oscar's commit and the mirror's
    Order.objects.filter(increment_id=oscar.number).delete()
    OrderLink.objects.all().delete()
    assert jobs.mirror_from_oscar()["orders"] == 1
    sales_jobs.export_orders()
    until(lambda: Order.objects.get(increment_id=oscar.number).is_exported)
    assert len(creates_of(oms, oscar.number)) == 1


def test_sandbox_shipment_becomes_an_oscar_shipping_event_with_tracking_and_status(
        oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = exported(oms, place_oscar, {"MUG": 2, "POSTER": 1})
    record = oscar_model("partner", "StockRecord").objects.get(partner_sku="MUG")
    assert (record.num_in_stock, record.num_allocated) == (25, 2)
    oms.ship(oscar.number, carrier="DHL", tracking="JD0001")
    Oscar = oscar_model("order", "Order")
    shipped = until(lambda: (o := Oscar.objects.get(pk=oscar.pk)).status == "Shipped" and o)
    [event] = shipped.shipping_events.all()
    assert event.event_type.name == "Shipped"
    assert "DHL JD0001" in event.notes
    assert {q.line.partner_sku: q.quantity for q in event.line_quantities.all()} == {"MUG": 2, "POSTER": 1}
    assert {ln.partner_sku: ln.status for ln in shipped.lines.all()} == {"MUG": "Shipped", "POSTER": "Shipped"}
    assert [(c.old_status, c.new_status) for c in shipped.status_changes.all()] == [("Pending", "Shipped")]
    record.refresh_from_db()
    assert (record.num_in_stock, record.num_allocated) == (23, 0)  # Oscar's allocation consumed on shipping
    # more passes change nothing
    jobs.apply_to_oscar()
    assert shipped.shipping_events.count() == 1


def test_sandbox_cancellation_cancels_lines_and_order_in_oscar(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = exported(oms, place_oscar, {"MUG": 1, "TSHIRT-M": 2})
    oms.cancel_lines(oscar.number)
    Oscar = oscar_model("order", "Order")
    cancelled = until(lambda: (o := Oscar.objects.get(pk=oscar.pk)).status == "Cancelled" and o)
    quantities = {}
    for event in cancelled.shipping_events.filter(event_type__name="Cancelled"):
        for q in event.line_quantities.all():
            quantities[q.line.partner_sku] = quantities.get(q.line.partner_sku, 0) + q.quantity
    assert quantities == {"MUG": 1, "TSHIRT-M": 2}
    assert {ln.status for ln in cancelled.lines.all()} == {"Cancelled"}
    record = oscar_model("partner", "StockRecord").objects.get(partner_sku="TSHIRT-M")
    assert record.num_allocated == 0
    assert record.num_in_stock == 40


def test_transition_oscar_refuses_is_reported_not_forced(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = exported(oms, place_oscar, {"POSTER": 1})
    oscar.set_status("Cancelled")  # a shop employee cancels in Oscar; "Cancelled" is final in the pipeline
    oms.ship(oscar.number, carrier="UPS", tracking="1Z999")
    Oscar = oscar_model("order", "Order")
    note = until(lambda: Oscar.objects.get(pk=oscar.pk).notes.filter(note_type="Error").first())
    assert "refused by Oscar (not forced)" in note.message
    refused = sorted(n.message for n in Oscar.objects.get(pk=oscar.pk).notes.filter(note_type="Error"))
    [line] = oscar.lines.all()
    assert refused == [
        f"[mcom] line {line.pk} status 'Shipped' refused by Oscar (not forced): 'Shipped' is not a valid status "
        "(current status: 'Cancelled')",
        f"[mcom] status 'Shipped' refused by Oscar (not forced): 'Shipped' is not a valid status for order "
        f"{oscar.number} (current status: 'Cancelled')",
    ]
    order = Oscar.objects.get(pk=oscar.pk)
    assert order.status == "Cancelled"
    assert order.lines.get().status == "Cancelled"
    assert order.shipping_events.filter(event_type__name="Shipped").count() == 1  # the shipment itself is recorded
    jobs.apply_to_oscar()
    oms.set_status(oscar.number, "SHIPPED")  # a later update of the order: the refusal is not repeated
    worker.run_until_idle()
    jobs.apply_to_oscar()
    assert Oscar.objects.get(pk=oscar.pk).notes.filter(note_type="Error").count() == 2


def test_stock_snapshot_sets_the_partners_stock_records(oms: Any, place_oscar: PlaceOscar) -> None:
    exported(oms, place_oscar, {"MUG": 3})
    oms.stock_snapshot("default", "DELTA", [{"sku": "MUG", "quantity": 7}, {"sku": "POSTER", "quantity": 0}],
                       created_on="2030-01-01 10:00:00")
    StockRecord = oscar_model("partner", "StockRecord")
    until(lambda: StockRecord.objects.get(partner_sku="POSTER").num_in_stock == 0)
    mug = StockRecord.objects.get(partner_sku="MUG")
    # Oscar still holds 3 allocated for the open order: its net stock level is the OMS's 7
    assert (mug.num_in_stock, mug.num_allocated, mug.net_stock_level) == (10, 3, 7)


def test_refund_of_a_return_becomes_an_oscar_payment_event(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = exported(oms, place_oscar, {"MUG": 2})
    oms.ship(oscar.number)
    order = until(lambda: (o := Order.objects.get(increment_id=oscar.number)).state == Order.STATE_COMPLETE and o)
    item = OrderItem.objects.get(order=order, sku="MUG")
    rma = postsales.request_return(order=order, lines=[postsales.ReturnLineIn(qty=Decimal(1), order_item_id=item.pk)],
                                   reason="damaged")
    rma = until(lambda: (r := type(rma).objects.get(pk=rma.pk)).rma_number and r)
    oms.approve_return(rma.rma_number)
    refund = oms.refund(rma.rma_number)
    Oscar = oscar_model("order", "Order")
    event = until(lambda: Oscar.objects.get(pk=oscar.pk).payment_events.filter(event_type__name="Refunded").first())
    assert event.amount == Decimal("9.50")
    assert [(q.line.partner_sku, q.quantity) for q in event.line_quantities.all()] == [("MUG", 1)]
    notes = [n.message for n in Oscar.objects.get(pk=oscar.pk).notes.all()]
    assert any(refund["credit_note_number"] in n for n in notes)
    assert any(f"return {rma.rma_number}" in n for n in notes)


def test_variants_and_attributes_feed_the_catalog_sync(oms: Any, shop: Any) -> None:
    parent = Product.objects.get(sku="TSHIRT")
    assert parent.type == Product.TYPE_CONFIGURABLE
    assert sorted(parent.children_skus) == ["TSHIRT-M", "TSHIRT-S"]
    child = Product.objects.get(sku="TSHIRT-S")
    assert child.custom_attributes["size"] == "S"
    assert child.custom_attributes["material"] == "cotton"
    # an edit in Oscar (dashboard or code) reaches mcom and the OMS
    oscar_mug = oscar_model("catalogue", "Product").objects.get(upc="MUG")
    def save_then_roll_back() -> None:
        with transaction.atomic():
            oscar_mug.title = "never saved"
            oscar_mug.save()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):  # a save that is rolled back: not mirrored
        save_then_roll_back()
    assert Product.objects.get(sku="MUG").name == "mcom Mug"
    with transaction.atomic():  # title, attribute and price saved in one transaction: mirrored once, after it
        oscar_mug.title = "mcom Mug (large)"
        oscar_mug.attr.material = "stoneware"
        oscar_mug.save()
        record = oscar_mug.stockrecords.get()
        record.price = Decimal("11.00")
        record.save()
        assert Product.objects.get(sku="MUG").name == "mcom Mug"
    mirrored = Product.objects.get(sku="MUG")
    assert (mirrored.name, mirrored.price, mirrored.custom_attributes["material"]) == (
        "mcom Mug (large)", Decimal("11.00"), "stoneware")
    worker.run_until_idle()
    assert [n["value"] for n in oms.product("MUG")["name"]] == ["mcom Mug (large)"]
    assert oms.product("TSHIRT-S")


def test_order_mcom_cannot_express_is_parked_with_its_reason_and_others_go_on(
        oms: Any, place_oscar: PlaceOscar) -> None:
    too_long = place_oscar({"MUG": 1}, number="N" * 40)  # mcom's increment ids hold 32 characters
    fine = place_oscar({"POSTER": 1})
    link = OrderLink.objects.get(oscar_order_id=too_long.pk)
    assert link.order is None
    assert "increment_id" in link.error
    assert link.attempts == 1
    assert not Order.objects.filter(increment_id__startswith="NNN").exists()  # nothing half-way
    assert oscar_model("order", "Order").objects.get(pk=too_long.pk).status == "Pending"  # Oscar untouched
    until(lambda: Order.objects.get(increment_id=fine.number).is_exported)
    assert len(creates_of(oms, fine.number)) == 1


def test_oms_status_and_partial_shipments_follow_oscars_pipeline(oms: Any, place_oscar: PlaceOscar) -> None:
    oscar = exported(oms, place_oscar, {"MUG": 2, "POSTER": 1})
    Oscar = oscar_model("order", "Order")
    oms.set_status(oscar.number, "LOGISTICS")
    processing = until(lambda: (o := Oscar.objects.get(pk=oscar.pk)).status == "Being processed" and o)
    assert {ln.status for ln in processing.lines.all()} == {"Being processed"}  # Oscar's cascade
    mug_lines = [ln["id"] for ln in oms.order(oscar.number)["lines"] if ln["sku"] == "MUG"]
    oms.ship(oscar.number, lines=mug_lines[:1], tracking="PART-1")
    until(lambda: Oscar.objects.get(pk=oscar.pk).shipping_events.count() == 1)
    order = Oscar.objects.get(pk=oscar.pk)
    assert order.status == "Being processed"  # partly shipped: mcom keeps it processing
    mug = order.lines.get(partner_sku="MUG")
    assert mug.shipping_status == "Shipped (1/2 items)"
    assert mug.status == "Being processed"
    oms.ship(oscar.number, tracking="PART-2")
    shipped = until(lambda: (o := Oscar.objects.get(pk=oscar.pk)).status == "Shipped" and o)
    assert shipped.shipping_events.count() == 2
    assert {ln.partner_sku: ln.shipping_status for ln in shipped.lines.all()} == {"MUG": "Shipped", "POSTER": "Shipped"}
    assert [(c.old_status, c.new_status) for c in shipped.status_changes.order_by("pk")] == [
        ("Pending", "Being processed"), ("Being processed", "Shipped")]


def test_full_catalog_export_sends_the_oscar_catalogue(oms: Any, shop: Any) -> None:
    export.schedule_export(requested_by="test")
    task = export.run_pending(sender=export.default_sender)
    assert task is not None, task and task.error
    assert task.status == task.COMPLETE, task and task.error
    assert task.processed == task.total >= 5  # the five mirrored Oscar products (parent and children) at least
    assert task.sent >= 1  # delivered during the export itself
    assert {"TSHIRT", "TSHIRT-S", "TSHIRT-M", "MUG", "POSTER"} <= {p["sku"] for p in oms.products()}


def test_stock_snapshot_of_an_aggregate_sets_only_its_partners_records(
        oms: Any, shop: Any, settings: Any) -> None:
    settings.MCOM_OSCAR = {**settings.MCOM_OSCAR, "aggregates": {"EU": ["main-warehouse"], "US": ["outlet"]}}
    Partner = oscar_model("partner", "Partner")
    outlet = Partner.objects.create(code="outlet", name="Outlet")
    mug = oscar_model("catalogue", "Product").objects.get(upc="MUG")
    mug.stockrecords.create(partner=outlet, partner_sku="MUG-OUTLET", price=Decimal("8.00"), num_in_stock=4)
    oms.stock_snapshot("EU", "DELTA", [{"sku": "MUG", "quantity": 12}], created_on="2030-01-01 10:00:00")
    StockRecord = oscar_model("partner", "StockRecord")
    until(lambda: StockRecord.objects.get(partner_sku="MUG").num_in_stock == 12)
    assert StockRecord.objects.get(partner_sku="MUG-OUTLET").num_in_stock == 4  # another aggregate's partner
    oms.stock_snapshot("US", "DELTA", [{"sku": "MUG", "quantity": 1}], created_on="2030-01-01 11:00:00")
    until(lambda: StockRecord.objects.get(partner_sku="MUG-OUTLET").num_in_stock == 1)
    assert StockRecord.objects.get(partner_sku="MUG").num_in_stock == 12


def test_mcom_admin_and_oscar_dashboard_serve_side_by_side(shop: Any, client: Any) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("owner", "owner@example.com", "owner-password-2026")
    client.login(username="owner", password="owner-password-2026")
    for path in ("/admin/", "/admin/mcom/", "/admin/mcom/messages/", "/dashboard/", "/dashboard/orders/",
                 "/catalogue/", "/basket/"):
        assert client.get(path).status_code == 200, path


def test_order_placed_while_the_oms_is_down_waits_in_the_outbox_and_is_sent_once(
        oms: Any, place_oscar: PlaceOscar) -> None:
    oms.down()
    oscar = place_oscar({"MUG": 1})  # the checkout succeeds; the synchronous send fails and will be retried
    order = Order.objects.get(increment_id=oscar.number)
    assert order.oms_export_state == Order.EXPORT_QUEUED
    assert "send failed, retrying" in order.oms_export_error
    assert oscar_model("order", "Order").objects.get(pk=oscar.pk).status == "Pending"
    oms.up()
    until(lambda: Order.objects.get(pk=order.pk).is_exported)  # the worker's retry
    assert len(creates_of(oms, oscar.number)) == 1


def test_shipping_event_oscar_refuses_is_reported_once_and_not_forced(oms: Any, place_oscar: PlaceOscar) -> None:
    from oscar.core.loading import get_class

    oscar = exported(oms, place_oscar, {"POSTER": 2})
    # someone recorded the shipment in Oscar's dashboard already: Oscar's line checks refuse a second one
    shipped = oscar_model("order", "ShippingEventType").objects.get_or_create(name="Shipped")[0]
    [line] = oscar.lines.all()
    get_class("order.processing", "EventHandler")().handle_shipping_event(oscar, shipped, [line], [2])
    oms.ship(oscar.number, tracking="LATE-1")
    Oscar = oscar_model("order", "Order")
    note = until(lambda: Oscar.objects.get(pk=oscar.pk).notes.filter(message__contains="mcom shipment").first())
    assert note.note_type == "Error"
    assert "refused by Oscar (not forced)" in note.message
    assert "too large" in note.message  # Oscar's own reason
    order = Oscar.objects.get(pk=oscar.pk)
    assert order.shipping_events.count() == 1  # only the dashboard's
    assert line.shipping_event_quantity(shipped) == 2
    jobs.apply_to_oscar()
    project_link = OrderLink.objects.get(oscar_order_id=oscar.pk)
    project.apply_order(project_link, force=True)  # even a forced pass does not report it twice
    assert Oscar.objects.get(pk=oscar.pk).notes.filter(message__contains="mcom shipment").count() == 1
