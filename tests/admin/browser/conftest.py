"""Playwright (sync API) + Debian chromium against a live connector server.

Playwright's sync API runs an event loop in the test thread; the test thread still touches the
ORM (fixtures, assertions), which Django's async-safety check would refuse, hence
``DJANGO_ALLOW_ASYNC_UNSAFE``. The connector is served from its own thread (``connector``).
Screenshots of every page go to ``artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"
USERNAME = "browser-admin"
PASSWORD = "browser-admin-password-2025"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/admin/browser/" in str(item.fspath).replace(os.sep, "/"):
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
def admin_user(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(USERNAME, "browser@example.com", PASSWORD)


@pytest.fixture
def page(browser: Any, connector: Any, admin_user: Any) -> Iterator[Any]:
    """A logged-in admin page on the live connector."""
    context = browser.new_context(base_url=connector.url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(60_000)  # a loaded 2-core CI machine can be slow; a wait that fails, fails late
    tab = context.new_page()
    tab.goto("/admin/login/?next=/admin/")
    tab.get_by_label("Username").fill(USERNAME)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url("**/admin/")
    yield tab
    context.close()


@pytest.fixture
def shot() -> Any:
    """``shot(page, "name")`` saves a full-page screenshot to artifacts/screenshots/name.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(tab: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return save
