"""No page of the MCOM section ever renders a configured secret."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client
from django.urls import reverse
from tests.admin.conftest import BUS_SECRET, CLIENT_SECRET, make_message
from tests.admin.test_permissions import PAGES

from mcom import instance
from mcom.service_bus.models import LoggedMessage, Registration


def test_no_page_renders_a_secret(operator_client: Client, secrets_env: Any) -> None:
    leaked = make_message(
        direction=LoggedMessage.OUT,
        topic="magento.service_bus.remote.register",
        payload=json.dumps({"id": "mdc", "secret": BUS_SECRET}),
        result=json.dumps({"echo": CLIENT_SECRET}),
        last_error=f"refused client_secret={CLIENT_SECRET}",
        status=LoggedMessage.ERROR,
    )
    Registration.objects.create(application_id="mdc", url="http://x", ok=False, error=f"bad {BUS_SECRET}")
    log = instance.log_file()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"2025-01-01 00:00:00,000 WARNING [mcom.t] token {CLIENT_SECRET} secret {BUS_SECRET}\n")
    urls = [reverse(f"mcom_admin:{name}") for name in PAGES]
    urls += [reverse("mcom_admin:message", args=[leaked.pk]), reverse("admin:index")]
    for url in urls:
        response = operator_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert BUS_SECRET not in body, url
        assert CLIENT_SECRET not in body, url
    detail = operator_client.get(reverse("mcom_admin:message", args=[leaked.pk])).content.decode()
    assert "&quot;secret&quot;: &quot;***&quot;" in detail
    for action in ("register", "check_connection"):
        body = operator_client.post(reverse(f"mcom_admin:{action}"), follow=True).content.decode()
        assert BUS_SECRET not in body, action
        assert CLIENT_SECRET not in body, action
