"""System checks warn about settings that weaken the inbound endpoint."""

from __future__ import annotations

from typing import Any

from mcom.service_bus.checks import service_bus_settings


def _ids(**overrides: Any) -> set[str]:
    return {m.id for m in service_bus_settings() if m.id}


def test_unsigned_deliveries_in_production_are_flagged(env: Any) -> None:
    env(mode="production", service_bus__secure_endpoint=False)
    assert "mcom.W001" in _ids()


def test_unsigned_deliveries_in_developer_mode_are_allowed(env: Any) -> None:
    env(mode="developer", service_bus__secure_endpoint=False)
    assert "mcom.W001" not in _ids()


def test_short_secret_is_flagged(env: Any) -> None:
    env(service_bus__secret="short")
    assert "mcom.W002" in _ids()


def test_plain_http_bus_url_in_production_is_flagged_but_loopback_is_not(env: Any) -> None:
    env(mode="production", service_bus__url="http://api.eu.oms.example.com/")
    assert "mcom.W003" in _ids()
    env(mode="production", service_bus__url="http://127.0.0.1:8089/")
    assert "mcom.W003" not in _ids()
