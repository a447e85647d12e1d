"""Fixtures of the django-oscar adapter tests: the real Oscar package in the same database as mcom.

These tests need ``--ds=mcom.contrib.oscar.settings`` (``scripts/test.sh`` runs them so, on SQLite
and PostgreSQL); under mcom's own settings they are not collected.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

OSCAR_SETTINGS = "mcom.contrib.oscar.settings"

if os.environ.get("DJANGO_SETTINGS_MODULE") != OSCAR_SETTINGS:
    collect_ignore = ["browser"]
    collect_ignore_glob = ["test_*.py"]

T = TypeVar("T")
CHANNEL = "oscar-shop"


@pytest.fixture
def shop(transactional_db: None) -> dict[str, Any]:
    """The demo catalogue (partner, T-shirt with S/M variants, mug, poster) and the mcom store ``oscar``."""
    from mcom.contrib.oscar import demo

    return demo.create_catalogue(channel=CHANNEL)


@pytest.fixture
def oms(wired: Any, env: Any) -> Any:
    """The sandbox OMS's test API (connector ⇄ sandbox over HTTP), retries due at once."""
    env(queue__backoff_base_seconds=0)
    return wired.sandbox.api


def oscar_model(app: str, name: str) -> Any:
    from oscar.core.loading import get_model

    return get_model(app, name)


PlaceOscar = Callable[..., Any]


@pytest.fixture
def place_oscar(shop: dict[str, Any]) -> PlaceOscar:
    """``place_oscar({"MUG": 2, "TSHIRT-S": 1}, number=None)``: an order placed through Oscar's ``OrderCreator``
    (Oscar's basket, strategy, totals and stock allocation; its ``order_placed`` signal)."""
    from oscar.apps.order.utils import OrderCreator
    from oscar.apps.partner.strategy import Default
    from oscar.apps.shipping.methods import Free
    from oscar.core.loading import get_class

    calculator = get_class("checkout.calculators", "OrderTotalCalculator")()
    Basket = oscar_model("basket", "Basket")
    Product = oscar_model("catalogue", "Product")
    ShippingAddress = oscar_model("order", "ShippingAddress")
    Country = oscar_model("address", "Country")

    def place(lines: dict[str, int], *, email: str = "ada@example.com", number: str | None = None) -> Any:
        basket = Basket.objects.create()
        basket.strategy = Default()
        for upc, qty in lines.items():
            basket.add_product(Product.objects.get(upc=upc), quantity=qty)
        address = ShippingAddress.objects.create(
            first_name="Ada", last_name="Lovelace", line1="1 Analytical Way", line4="Berlin", postcode="10115",
            country=Country.objects.get(iso_3166_1_a2="DE"), phone_number="+49301234567")
        method = Free()
        charge = method.calculate(basket)
        order = OrderCreator().place_order(
            basket=basket, total=calculator.calculate(basket, charge), shipping_method=method,
            shipping_charge=charge, shipping_address=address, guest_email=email, order_number=number)
        basket.submit()
        order.refresh_from_db()  # the number as stored (a string)
        return order

    return place


def until(check: Callable[[], T], *, timeout: float = 20.0) -> T:
    """Run mcom's worker and the adapter's cron job until ``check()`` is truthy."""
    from mcom.contrib.oscar import jobs
    from mcom.service_bus import worker
    from mcom.service_bus.models import LoggedMessage

    deadline = time.monotonic() + timeout
    while True:
        worker.run_until_idle(max_seconds=5)
        jobs.apply_to_oscar()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            log = [(m.direction, m.topic, m.status, m.last_error[:200]) for m in LoggedMessage.objects.order_by("id")]
            raise AssertionError(f"condition not met within {timeout}s; message log: {log}")
        time.sleep(0.05)


def money(value: str) -> Decimal:
    return Decimal(value)
