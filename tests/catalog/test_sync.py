"""Product sync: saving products queues product_management.updated in the outbox (§8.6)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mcom.catalog import sync
from mcom.catalog.models import ProductSync, ShippingMethod
from mcom.commerce.models import Order, Product, Store
from mcom.commerce.schemas import ProductIn
from mcom.service_bus import methods
from mcom.service_bus.models import LoggedMessage
from mcom.service_bus.registry import OutboundMessage

from .conftest import make_products, product_messages

pytestmark = pytest.mark.django_db


def test_saving_a_product_queues_its_spec_with_the_configured_attributes(upsert: Any, attributes: Any) -> None:
    attributes("color,ean,price")
    upsert([ProductIn(sku="SHIRT", name="Shirt", price="12.50", custom_attributes={"color": "red", "size": "L"})])
    [params] = product_messages("SHIRT")
    product = params["product"]
    assert product["sku"] == product["id"] == "SHIRT"
    assert product["type"] == "simple"
    assert product["name"][0]["value"] == "Shirt"
    assert (product["enabled"], product["status"]) == (True, "active")
    assert product["custom_attributes"] == [
        {"attribute_code": "color", "value": "red"},
        {"attribute_code": "price", "value": 12.5},
    ]
    row = LoggedMessage.objects.get(entity_key="product:SHIRT")
    assert (row.kind, row.dedupe_key, row.status) == (LoggedMessage.KIND_EVENT, "product:SHIRT", LoggedMessage.NEW)
    assert ProductSync.objects.get(product__sku="SHIRT").last_queued_at is not None


def test_names_are_sent_per_store_channel_and_locale(upsert: Any, attributes: Any) -> None:
    from mcom.commerce import config

    Store.objects.create(code="nl", name="NL", locale="nl_NL")
    Store.objects.create(code="us", name="US", locale="en_US")
    config.set_value("mcom/general/sales_channel_id", "US-WEB", scope="store", scope_code="us")
    upsert([ProductIn(sku="A", name="Alpha")])
    names = product_messages("A")[0]["product"]["name"]
    assert names == [
        {"value": "Alpha", "channel": "nl", "locale": "nl_NL"},
        {"value": "Alpha", "channel": "US-WEB", "locale": "en_US"},
    ]


def test_configurable_products_carry_their_children(upsert: Any) -> None:
    upsert([ProductIn(sku="C-S", name="Small"), ProductIn(sku="C-M", name="Medium"),
            ProductIn(sku="C", name="Config", type="configurable", children_skus=["C-S", "C-M"])])
    assert product_messages("C")[0]["product"]["children_skus"] == ["C-S", "C-M"]
    assert product_messages("C-S")[0]["product"]["children_skus"] == []


def test_rapid_saves_send_the_latest_state_once(upsert: Any) -> None:
    upsert([ProductIn(sku="A", name="v1")])
    upsert([ProductIn(sku="A", name="v2", enabled=False)])
    upsert([ProductIn(sku="A", name="v3", enabled=False), ProductIn(sku="B", name="b")])
    msgs = product_messages("A")
    assert len(msgs) == 1
    assert msgs[0]["product"]["name"][0]["value"] == "v3"
    assert msgs[0]["product"]["status"] == "inactive"


def test_a_message_already_sent_is_not_replaced(upsert: Any) -> None:
    upsert([ProductIn(sku="A", name="v1")])
    LoggedMessage.objects.filter(entity_key="product:A").update(status=LoggedMessage.COMPLETE)
    upsert([ProductIn(sku="A", name="v2")])
    assert [m["product"]["name"][0]["value"] for m in product_messages("A")] == ["v1", "v2"]


def test_bulk_upsert_queues_set_based(upsert: Any) -> None:
    upsert(make_products(1000))  # first pass: rows exist in the log
    with CaptureQueriesContext(connection) as ctx:
        upsert(make_products(2000, start=500))  # 500 waiting (replaced) + 1500 new
    assert LoggedMessage.objects.filter(topic=methods.PRODUCT_UPDATED).count() == 2500
    assert ProductSync.objects.count() == 2500
    # set-based: statements grow with batches (SQLite: parameter-limit chunks), not one per product
    assert len(ctx.captured_queries) < 2000 / 10, len(ctx.captured_queries)


def test_nothing_is_queued_when_the_catalog_module_is_disabled(upsert: Any, env: Any) -> None:
    env(modules=["sales", "inventory"])
    upsert([ProductIn(sku="A", name="a")])
    assert product_messages() == []


def _msg(sku: str) -> OutboundMessage:
    return OutboundMessage(1, methods.PRODUCT_UPDATED, "m-1", f"product:{sku}", {}, 1)


def test_delivery_outcome_is_tracked_per_product(upsert: Any) -> None:
    upsert([ProductIn(sku="A", name="a")])
    sync.on_failed(_msg("A"), "OmsUnavailable: down", True)
    row = ProductSync.objects.get(product__sku="A")
    assert row.last_error == "OmsUnavailable: down (will retry)"
    assert row.last_synced_at is None
    sync.on_sent(_msg("A"), [])
    row.refresh_from_db()
    assert row.last_error == ""
    assert row.last_synced_at is not None
    sync.on_sent(_msg("GONE"), [])  # unknown product: ignored
    sync.on_sent(OutboundMessage(2, methods.PRODUCT_UPDATED, "m-2", "shipping:STANDARD", {}, 1), [])


def test_shipping_methods_are_discovered_from_orders_and_queued_as_skus(db: None) -> None:
    store = Store.objects.create(code="default", name="Default")
    Order.objects.create(increment_id="1", store=store, customer_email="a@b.c", shipping_method="ups_NextDay",
                         shipping_description="UPS Next Day")
    Order.objects.create(increment_id="2", store=store, customer_email="a@b.c")  # flatrate_flatrate
    ids = sync.queue_shipping_methods()
    assert len(ids) == 2
    assert set(ShippingMethod.objects.values_list("code", flat=True)) == {"flatrate_flatrate", "ups_NextDay"}
    specs = {m["product"]["sku"]: m["product"] for m in product_messages()}
    assert set(specs) == {"STANDARD", "ups-NextDay"}
    assert specs["STANDARD"]["type"] == specs["ups-NextDay"]["type"] == "shipping"
    assert specs["ups-NextDay"]["name"][0]["value"] == "UPS Next Day"
    ShippingMethod.objects.filter(code="ups_NextDay").update(active=False)
    LoggedMessage.objects.all().delete()
    assert len(sync.queue_shipping_methods()) == 1
    assert Product.objects.count() == 0  # shipping SKUs are not catalog products
