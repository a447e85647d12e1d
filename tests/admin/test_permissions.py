"""Who may see and who may act in the MCOM section (Django test client, fast)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from tests.admin.conftest import PASSWORD, _user, make_message

from mcom import envconfig
from mcom.adminui import permissions
from mcom.service_bus.models import LoggedMessage

PAGES = [
    "dashboard",
    "integration",
    "configuration",
    "messages",
    "catalog_export",
    "changelog",
    "system_report",
    "connector_log",
]
ACTIONS = [
    ("register", []),
    ("check_connection", []),
    ("configuration", []),
    ("catalog_export_run", []),
    ("catalog_export_schedule", []),
    ("catalog_export_cancel", []),
    ("message_retry", ["pk"]),
    ("message_ignore", ["pk"]),
]


def _action_url(name: str, args: list[str], msg: LoggedMessage) -> str:
    return reverse(f"mcom_admin:{name}", args=[msg.pk] if args else [])


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_the_admin_login(client: Client, db: None, name: str) -> None:
    url = reverse(f"mcom_admin:{name}")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_non_staff_users_are_sent_to_the_login(db: None) -> None:
    user = _user("shopper", staff=False)
    c = Client()
    c.force_login(user)
    response = c.get(reverse("mcom_admin:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_mcom_permission_get_403(db: None) -> None:
    c = Client()
    c.force_login(_user("clerk"))
    assert c.get(reverse("mcom_admin:dashboard")).status_code == 403
    assert permissions.can_view(_user("clerk2")) is False


@pytest.mark.parametrize("name", PAGES)
def test_read_only_role_sees_every_page(reader_client: Client, name: str) -> None:
    assert reader_client.get(reverse(f"mcom_admin:{name}")).status_code == 200


def test_read_only_role_sees_no_action_buttons(reader_client: Client) -> None:
    msg = make_message(status=LoggedMessage.ERROR, last_error="boom")
    checks = {
        "integration": ["Register", "Check connection"],
        "configuration": ["Save Config"],
        "catalog_export": ["Export full catalog", "Schedule export"],
    }
    for name, labels in checks.items():
        html = reader_client.get(reverse(f"mcom_admin:{name}")).content.decode()
        for label in labels:
            assert f">{label}<" not in html, (name, label)
            assert f'value="{label}"' not in html, (name, label)
    detail = reader_client.get(reverse("mcom_admin:message", args=[msg.pk])).content.decode()
    assert ">Retry<" not in detail
    assert ">Ignore<" not in detail
    config_html = reader_client.get(reverse("mcom_admin:configuration")).content.decode()
    assert "disabled" in config_html


@pytest.mark.parametrize(("name", "args"), ACTIONS)
def test_read_only_role_cannot_act(reader_client: Client, name: str, args: list[str]) -> None:
    msg = make_message(status=LoggedMessage.ERROR)
    response = reader_client.post(_action_url(name, args, msg), {"mcom__general__sales_channel_id": "x"})
    assert response.status_code == 403
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.ERROR


@pytest.mark.parametrize("name", ["register", "check_connection", "message_retry", "catalog_export_cancel"])
def test_actions_refuse_get(operator_client: Client, name: str) -> None:
    msg = make_message(status=LoggedMessage.ERROR)
    args = ["pk"] if name == "message_retry" else []
    assert operator_client.get(_action_url(name, args, msg)).status_code == 405


def test_actions_need_a_csrf_token(operator: Any) -> None:
    msg = make_message(status=LoggedMessage.ERROR)
    c = Client(enforce_csrf_checks=True)
    c.force_login(operator)
    assert c.post(reverse("mcom_admin:message_retry", args=[msg.pk])).status_code == 403
    assert c.post(reverse("mcom_admin:configuration"), {}).status_code == 403
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.ERROR


def test_staff_with_act_permission_may_act(actor: Any) -> None:
    msg = make_message(status=LoggedMessage.ERROR)
    c = Client()
    c.force_login(actor)
    assert permissions.can_act(actor)
    assert permissions.can_view(actor)
    response = c.post(reverse("mcom_admin:message_ignore", args=[msg.pk]))
    assert response.status_code == 302
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.IGNORED


def test_make_read_only_creates_the_group_once_with_view_permissions(db: None) -> None:
    a, b = _user("a"), _user("b")
    permissions.make_read_only(a)
    permissions.make_read_only(b)
    group = Group.objects.get(name=permissions.READ_ONLY_GROUP)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "mcom_view" in codenames
    assert "mcom_act" not in codenames
    assert {"view_order", "view_loggedmessage", "view_stockitem"} <= codenames
    assert not any(c.startswith(("add_", "change_", "delete_")) for c in codenames)
    assert set(group.user_set.values_list("username", flat=True)) == {"a", "b"}
    a = type(a).objects.get(pk=a.pk)  # fresh permission cache
    assert permissions.can_view(a)
    assert not permissions.can_act(a)


def test_cli_created_read_only_admin_can_log_in_and_see_but_not_act(db: None) -> None:
    from mcom.cli.setup import _create_admin

    _create_admin("auditor", PASSWORD, "auditor@example.com", read_only=True)
    c = Client()
    assert c.login(username="auditor", password=PASSWORD)
    assert c.get(reverse("mcom_admin:system_report")).status_code == 200
    assert c.post(reverse("mcom_admin:catalog_export_schedule")).status_code == 403


def test_admin_index_and_sidebar_show_the_mcom_menu(operator_client: Client, reader_client: Client) -> None:
    index = operator_client.get(reverse("admin:index")).content.decode()
    assert 'class="app-mcom module' in index
    for name in PAGES:
        assert reverse(f"mcom_admin:{name}") in index
    assert 'class="app-mcom module' in reader_client.get(reverse("admin:index")).content.decode()


def test_admin_index_hides_the_mcom_menu_from_staff_without_access(db: None) -> None:
    c = Client()
    c.force_login(_user("clerk"))
    assert "app-mcom" not in c.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize(("mode", "editable"), [("developer", True), ("production", False)])
def test_stock_is_read_only_in_production_mode(
    env: Any, rf: Any, operator: Any, mode: str, editable: bool
) -> None:
    from django.contrib import admin

    from mcom.commerce.models import StockItem

    env(mode=mode)
    assert envconfig.current().mode == mode
    assert permissions.stock_editable() is editable

    class StockAdmin(permissions.ReadOnlyInProductionMixin, admin.ModelAdmin):  # type: ignore[type-arg]
        pass

    request = rf.get("/")
    request.user = operator
    model_admin = StockAdmin(StockItem, admin.site)
    assert model_admin.has_change_permission(request) is editable
    assert model_admin.has_add_permission(request) is editable
    assert model_admin.has_delete_permission(request) is editable
    assert model_admin.has_view_permission(request) is True
