"""Fixtures of the foundation tests: subprocess runner with its own instance root, REST clients."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from mcom.commerce import hooks

MCOM = [sys.executable, "-m", "mcom.cli.main"]
ADMIN_PASSWORD = "Adm1n-pass-xyz!"


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess: no MCOM_* of this session, its own MCOM_ROOT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCOM_") and k != "DJANGO_SETTINGS_MODULE"}
    env["MCOM_ROOT"] = str(root)
    env.update(extra)
    return env


def run_mcom(root: Path, *args: str, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MCOM, *args], cwd=root, env=clean_env(root, **extra), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(autouse=True)
def isolated_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Foundation tests check commerce's own contract: start every hook list empty."""
    for name in ("order_placed", "order_status_guard", "products_saved", "stock_edit_guard"):
        monkeypatch.setattr(hooks, name, [])


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Api:
    client: Client
    headers: dict[str, str]

    def get(self, url: str) -> Any:
        return self.client.get(url, headers=self.headers)

    def post(self, url: str, body: Any) -> Any:
        return self.client.post(url, body, content_type="application/json", headers=self.headers)

    def put(self, url: str, body: Any) -> Any:
        return self.client.put(url, body, content_type="application/json", headers=self.headers)


@pytest.fixture
def api(db: None) -> Api:
    """A REST client authenticated with a fresh API token."""
    from mcom.commerce import tokens

    _, token = tokens.create_token(name="tests")
    return Api(Client(), {"Authorization": f"Bearer {token}"})


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def catalog(db: None) -> dict[str, Any]:
    """A store with an aggregate, and simple / configurable / bundle / virtual products."""
    from mcom.commerce import services
    from mcom.commerce.models import StockAggregate, Store
    from mcom.commerce.schemas import ProductIn

    agg = StockAggregate.objects.create(code="agg_default", name="Default stock")
    store, _ = Store.objects.update_or_create(
        code="default", defaults={"name": "Default Store View", "stock_aggregate": agg, "currency": "USD"}
    )
    services.upsert_products([
        ProductIn(sku="TEE-RED-M", name="Tee Red M", price="20.00", custom_attributes={"color": "Red", "size": "M"}),
        ProductIn(sku="TEE-BLUE-M", name="Tee Blue M", price="20.00"),
        ProductIn(sku="TEE", name="Tee", type="configurable", price="20.00", children_skus=["TEE-RED-M", "TEE-BLUE-M"]),
        ProductIn(sku="MUG", name="Mug", price="9.99"),
        ProductIn(sku="KIT", name="Kit", type="bundle", price="25.00", children_skus=["MUG", "TEE-RED-M"]),
        ProductIn(sku="WARRANTY", name="Warranty", type="virtual", price="15.00"),
        ProductIn(sku="OLD", name="Old", price="1.00", enabled=False),
    ])
    return {"store": store, "aggregate": agg}


ADDRESS = {
    "firstname": "Ava", "lastname": "Smith", "street1": "1 Main Street", "city": "Austin",
    "region": "Texas", "postcode": "78701", "country_id": "US",
}


def order_payload(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_email": "ava@example.com",
        "billing_address": ADDRESS,
        "lines": [{"sku": "MUG", "qty": 2, "tax_percent": "8.25"}],
        "shipping": {"amount": "5.00", "tax_percent": "8.25"},
    }
    body.update(over)
    return body


@pytest.fixture
def tmp_root(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "etc").mkdir()
    return tmp_path
