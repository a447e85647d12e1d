"""A customer orders in the real Oscar storefront; the sandbox OMS ships it; the shop owner finds it
shipped, with the tracking number, in Oscar's dashboard."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest

from mcom.commerce.models import Order

from ..conftest import oscar_model, until

pytestmark = pytest.mark.browser

STAFF_EMAIL = "owner@example.com"
STAFF_PASSWORD = "oscar-owner-password-2026"


def test_storefront_order_is_shipped_by_the_sandbox_and_shown_shipped_in_the_dashboard(
        browser: Any, wired: Any, oms: Any, shop: Any, shot: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("rebuild_index", interactive=False, verbosity=0)  # Oscar browses through its search index
    get_user_model().objects.create_superuser("owner", STAFF_EMAIL, STAFF_PASSWORD)
    context = browser.new_context(base_url=wired.connector.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()

    # the customer: catalogue → product → basket → guest checkout → place order
    page.goto("/catalogue/")
    page.get_by_role("link", name="mcom Mug").first.click()
    page.get_by_role("button", name="Add to cart").click()
    page.goto("/basket/")
    page.get_by_role("link", name="Proceed to checkout").click()
    page.get_by_label("My email address is").fill("grace@example.com")
    page.get_by_label("I am a new customer and want to checkout as a guest").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("First line of address").fill("1 Compiler Road")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Post/Zip-code").fill("10115")
    page.get_by_label("Country").select_option(label="Germany")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("link", name="Continue").or_(page.get_by_role("button", name="Continue")).first.click()
    shot(page, "oscar-preview")
    page.get_by_role("button", name="Place order").first.click()
    page.wait_for_url("**/checkout/thank-you/")
    shot(page, "oscar-thank-you")
    oscar = oscar_model("order", "Order").objects.get()
    assert oscar.number in page.content()

    # mcom exported it (synchronous mode of the shop's store); a person ships it in the sandbox's UI
    until(lambda: Order.objects.get(increment_id=oscar.number).is_exported)
    assert oms.order(oscar.number)["store"] == "oscar-shop"
    sandbox = context.new_page()
    sandbox.goto(f"{wired.sandbox.url.rstrip('/')}/_sandbox/orders/{oscar.number}")
    sandbox.get_by_label("tracking number").fill("JD014600006101")
    sandbox.get_by_role("button", name="Ship", exact=True).click()
    sandbox.wait_for_load_state()
    shot(sandbox, "oscar-sandbox-shipped")
    until(lambda: oscar_model("order", "Order").objects.get(pk=oscar.pk).status == "Shipped")

    # the shop owner: Oscar's dashboard shows the order shipped, with the shipping event and tracking
    page.goto("/accounts/login/")
    page.locator("#id_login-username").fill(STAFF_EMAIL)
    page.locator("#id_login-password").fill(STAFF_PASSWORD)
    page.locator("button[name=login_submit]").click()
    page.goto(f"/dashboard/orders/{oscar.number}/")
    assert "Shipped" in page.locator("body").inner_text()
    page.get_by_role("link", name="Shipping").first.click()
    shipping = page.locator("body").inner_text()
    assert "JD014600006101" in shipping
    assert "Shipped" in shipping
    shot(page, "oscar-dashboard-shipping")
    assert outside == []  # no page loaded anything from outside the instance
    context.close()
