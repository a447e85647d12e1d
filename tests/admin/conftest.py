"""Fixtures of the MCOM admin tests: users in each role, logged-in clients, sample messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from mcom.adminui import permissions
from mcom.service_bus.models import LoggedMessage

PASSWORD = "correct-horse-battery-staple-42"
CLIENT_SECRET = "oauth-client-secret-value-XYZ-123"
BUS_SECRET = "delivery-hmac-secret-0123456789abcdefABCDEF"


def _user(username: str, *, superuser: bool = False, staff: bool = True) -> Any:
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD)
    user.is_staff = staff
    user.is_superuser = superuser
    user.save()
    return user


@pytest.fixture
def operator(db: None) -> Any:
    """A superuser: sees and acts."""
    return _user("operator", superuser=True)


@pytest.fixture
def reader(db: None) -> Any:
    """Staff in the "MCOM read-only" group: sees, cannot act."""
    user = _user("reader")
    permissions.make_read_only(user)
    return user


@pytest.fixture
def actor(db: None) -> Any:
    """Staff (not superuser) with the mcom_act permission."""
    user = _user("actor")
    permissions.grant_act(user)
    return user


@pytest.fixture
def operator_client(operator: Any) -> Client:
    c = Client()
    c.force_login(operator)
    return c


@pytest.fixture
def reader_client(reader: Any) -> Client:
    c = Client()
    c.force_login(reader)
    return c


@pytest.fixture
def secrets_env(env: Any) -> Any:
    """A complete [service_bus] section with recognisable secrets (nothing listens there)."""
    return env(
        service_bus__url="http://127.0.0.1:9/",
        service_bus__oauth_server_url="http://127.0.0.1:9/",
        service_bus__oauth_client_id="mcom-client",
        service_bus__oauth_client_secret=CLIENT_SECRET,
        service_bus__secret=BUS_SECRET,
        service_bus__application_base_url="http://127.0.0.1:8000",
    )


def make_message(**fields: Any) -> LoggedMessage:
    now = timezone.now()
    defaults: dict[str, Any] = {
        "direction": LoggedMessage.IN,
        "topic": "magento.inventory.source_stock_management.update",
        "message_id": f"msg-{LoggedMessage.objects.count() + 1}",
        "entity_key": "sku:24-MB01",
        "payload": json.dumps({"stock": [{"sku": "24-MB01", "qty": 5}]}),
        "status": LoggedMessage.COMPLETE,
        "created_at": now,
        "updated_at": now,
    }
    defaults.update(fields)
    return LoggedMessage.objects.create(**defaults)
