"""Fixtures shared with the sales tests (a store with products, ``place``); the integration is
enabled again after every test."""

from collections.abc import Iterator

import pytest
from tests.sales.conftest import _fresh_plugins, place, shop  # noqa: F401  (pytest fixtures)

from mcom.service_bus import integration


@pytest.fixture(autouse=True)
def _integration_enabled() -> Iterator[None]:
    yield
    integration.enable(by="test teardown")
