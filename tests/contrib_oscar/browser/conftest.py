"""Playwright + Debian chromium against the live Oscar storefront served by the connector's ASGI app
(``--ds=mcom.contrib.oscar.settings``): the same process answers the OMS's deliveries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from tests.admin.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/contrib_oscar/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shot() -> Any:
    """``shot(page, "name")`` saves a full-page screenshot to artifacts/screenshots/oscar-name.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"oscar-{name}.png"), full_page=True)

    return take
