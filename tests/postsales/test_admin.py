"""The admin lists the OMS refunds read-only."""

from __future__ import annotations

from decimal import Decimal as D

from django.contrib.auth.models import User
from django.test import Client

from mcom.postsales import refunds
from mcom.postsales.messages import parse_refund_update

from .conftest import MakeOrder


def test_oms_refunds_are_listed_read_only(make_order: MakeOrder) -> None:
    order = make_order([("SKU-A", 1, 1)])
    refunds.apply_refund(parse_refund_update({"refund": {
        "order_id": order.increment_id, "rma": "RMA-9", "credit_note_number": "CDE9", "status": "PENDINGRELEASE"}}))
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/postsales/omsrefund/")
    assert page.status_code == 200
    assert b"CDE9" in page.content
    assert b"PENDINGRELEASE" in page.content
    assert client.get("/admin/postsales/omsrefund/add/").status_code == 403
    assert order.total_refunded == D(0)
