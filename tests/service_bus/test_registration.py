"""Registration with the bus: payload of oms-protocol.md §6 / §12 #21, recorded without the secret."""

from __future__ import annotations

from typing import Any

import pytest

from mcom.service_bus import methods, registration, registry
from mcom.service_bus.models import Registration

from .conftest import SECRET
from .fakebus import FakeBus

pytestmark = pytest.mark.django_db


def test_register_unregisters_first_then_sends_the_protocol_payload(bus: FakeBus, env: Any) -> None:
    env(service_bus__labels='{"env": "test", "region": "eu"}')
    reg = registration.register(source="test")
    unregister, register = bus.rpc_requests("/")
    assert unregister.json["method"] == methods.UNREGISTER
    assert unregister.json["params"] == {"id": "mdc"}
    assert register.json["method"] == methods.REGISTER
    assert register.json["params"] == {
        "id": "mdc",
        "url": "http://127.0.0.1:9/shop/mcom/service-bus",
        "secret": SECRET,
        "subscribes": registry.topics(),
        "labels": {"env": "test", "region": "eu"},
    }
    assert reg.ok
    assert reg.url == "http://127.0.0.1:9/shop/mcom/service-bus"
    assert reg.source == "test"
    assert reg.topics == registry.topics()
    assert reg.labels == {"env": "test", "region": "eu"}
    assert SECRET not in repr(Registration.objects.values().get(pk=reg.pk))


def test_topics_key_is_configurable_and_only_enabled_modules_subscribe(bus: FakeBus, env: Any, routes: Any) -> None:
    env(service_bus__topics_key="topics", modules=["sales"])
    registration.register(source="test")
    params = bus.rpc_requests("/")[-1].json["params"]
    assert "subscribes" not in params
    assert "labels" not in params
    assert params["topics"] == registry.topics()
    assert routes.COUNT in params["topics"]  # service_bus module routes are always on
    for method, route in registry.all_inbound().items():
        assert (method in params["topics"]) == (route.module in ("sales", "service_bus"))


def test_unregister_failure_is_ignored(bus: FakeBus) -> None:
    bus.answers[methods.UNREGISTER] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"unknown id"}}')
    assert registration.register(source="test").ok


def test_refused_registration_is_recorded_and_raised_without_secret(bus: FakeBus) -> None:
    bus.answers[methods.REGISTER] = (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"url must not be empty"}}')
    with pytest.raises(registration.RegistrationError) as exc:
        registration.register(source="setup:upgrade")
    assert "url must not be empty" in str(exc.value)
    assert SECRET not in str(exc.value)
    last = registration.latest()
    assert last is not None
    assert not last.ok
    assert "url must not be empty" in last.error
    assert last.source == "setup:upgrade"


def test_unreachable_bus_or_missing_config_raise_registration_error(env: Any) -> None:
    env(service_bus__application_base_url="http://127.0.0.1:9")
    with pytest.raises(registration.RegistrationError, match="service_bus.url is missing"):
        registration.register(source="test")
    assert Registration.objects.filter(ok=False).count() == 1


def test_inbound_url_falls_back_to_the_store_base_url(env: Any) -> None:
    from mcom.commerce import config

    env(service_bus__application_base_url="")
    with pytest.raises(registration.RegistrationError, match="no inbound URL"):
        registration.inbound_url()
    config.set_value("web/base_url", "https://shop.example.com/")
    assert registration.inbound_url() == "https://shop.example.com/mcom/service-bus"
    env(service_bus__application_base_url="https://connector.example.com/base")
    assert registration.inbound_url() == "https://connector.example.com/base/mcom/service-bus"
