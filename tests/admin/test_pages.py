"""Each MCOM page renders what the operator needs (Django test client against the real database)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.admin.conftest import make_message

from mcom import instance
from mcom.adminui import changelog, chart, report
from mcom.commerce import config
from mcom.commerce.models import ConfigValue, Store
from mcom.service_bus.models import CronJobState, LoggedMessage, Registration


def html(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


# ------------------------------------------------------------------------------------- dashboard


def test_dashboard_links_every_page_and_charts_the_last_24_hours(operator_client: Client) -> None:
    now = timezone.now()
    make_message(direction=LoggedMessage.IN, created_at=now)
    make_message(direction=LoggedMessage.OUT, created_at=now - timedelta(hours=2), status=LoggedMessage.ERROR)
    make_message(direction=LoggedMessage.OUT, created_at=now - timedelta(hours=30))  # outside the window
    page = html(operator_client.get(reverse("mcom_admin:dashboard")))
    for name in (
        "integration",
        "configuration",
        "messages",
        "catalog_export",
        "changelog",
        "system_report",
        "connector_log",
    ):
        assert reverse(f"mcom_admin:{name}") in page
    assert "<svg" in page
    assert 'role="img"' in page
    assert "1 incoming, 1 outgoing and 1 in error over the last 24 hours" in page


def test_hourly_activity_buckets_by_hour(db: None) -> None:
    now = timezone.now().replace(minute=30)
    make_message(direction=LoggedMessage.IN, created_at=now)
    make_message(direction=LoggedMessage.IN, created_at=now - timedelta(minutes=10))
    make_message(direction=LoggedMessage.OUT, created_at=now - timedelta(hours=1), status=LoggedMessage.ERROR)
    buckets = report.hourly_activity(24, now=now)
    assert len(buckets) == 24
    assert (buckets[-1].incoming, buckets[-1].outgoing, buckets[-1].errors) == (2, 0, 0)
    assert (buckets[-2].incoming, buckets[-2].outgoing, buckets[-2].errors) == (0, 1, 1)
    drawn = chart.build(buckets)
    assert drawn.total_in == 2
    assert drawn.total_out == 1
    assert drawn.total_errors == 1
    assert len(drawn.incoming) == 24
    assert len(drawn.error_dots) == 1


# ----------------------------------------------------------------------------------- integration


def test_integration_shows_settings_topics_and_history_never_secrets(
    operator_client: Client, secrets_env: Any
) -> None:
    Registration.objects.create(
        application_id="mdc", url="http://x/mcom/service-bus", ok=False, error="bus down", source="cli"
    )
    page = html(operator_client.get(reverse("mcom_admin:integration")))
    assert "http://127.0.0.1:9/" in page
    assert "mcom-client" in page
    assert "http://127.0.0.1:8000/mcom/service-bus" in page
    assert "bus down" in page
    assert "Failed" in page
    assert "configured (hidden)" in page
    assert ">Register<" in page
    assert ">Check connection<" in page


def test_register_failure_is_reported(operator_client: Client, secrets_env: Any) -> None:
    response = operator_client.post(reverse("mcom_admin:register"), follow=True)
    page = html(response)
    assert "Registration failed" in page
    reg = Registration.objects.get()
    assert reg.ok is False
    assert reg.source == "admin"


def test_check_connection_reports_an_unreachable_oauth_server(
    operator_client: Client, secrets_env: Any
) -> None:
    page = html(operator_client.post(reverse("mcom_admin:check_connection"), follow=True))
    assert "Connection failed" in page
    assert "127.0.0.1:9" in page


def test_check_connection_names_the_missing_key(operator_client: Client, env: Any) -> None:
    env(service_bus__url="", service_bus__oauth_server_url="")
    page = html(operator_client.post(reverse("mcom_admin:check_connection"), follow=True))
    assert "service_bus.url is missing" in page


# --------------------------------------------------------------------------------- configuration


def _post_config(c: Client, data: dict[str, Any], store: str = "") -> Any:
    url = reverse("mcom_admin:configuration") + (f"?store={store}" if store else "")
    base = {
        "mcom__general__sales_channel_id": "",
        "mcom__transport__process_order_synchronously": "0",
        "mcom__orders__export_statuses": ["pending"],
        "mcom__catalog__custom_attributes": [],
        "mcom__message_log__prune_enabled": "1",
        "mcom__message_log__prune_days": "30",
        "web__base_url": "",
    }
    if store:
        base = {k: v for k, v in base.items() if "message_log" not in k}
    base.update(data)
    return c.post(url, base, follow=True)


def test_configuration_lists_every_path_grouped_like_the_seed(operator_client: Client) -> None:
    page = html(operator_client.get(reverse("mcom_admin:configuration")))
    positions = [page.index(f">{group}</h2>") for group in config.GROUPS]
    assert positions == sorted(positions)
    for spec in config.PATHS.values():
        assert spec.path in page
        assert spec.label in page
    assert 'name="mcom__orders__export_statuses" ' in page
    assert "multiple" in page
    assert "Use default" not in page  # default scope


def test_configuration_saves_changed_values_of_the_default_scope(operator_client: Client) -> None:
    page = html(
        _post_config(
            operator_client,
            {
                "mcom__general__sales_channel_id": "luma",
                "mcom__orders__export_statuses": ["pending", "processing"],
                "mcom__catalog__custom_attributes": ["color", "size"],
                "mcom__message_log__prune_days": "14",
            },
        )
    )
    assert "Configuration saved" in page
    assert config.get("mcom/general/sales_channel_id") == "luma"
    assert config.get("mcom/orders/export_statuses") == ["pending", "processing"]
    assert config.get("mcom/catalog/custom_attributes") == ["color", "size"]
    assert config.get("mcom/message_log/prune_days") == 14
    # unchanged paths keep their declared default, no row is written for them
    assert not ConfigValue.objects.filter(path="mcom/transport/process_order_synchronously").exists()


def test_configuration_shows_validation_errors_next_to_the_field_and_saves_nothing(
    operator_client: Client,
) -> None:
    page = html(
        _post_config(
            operator_client,
            {
                "mcom__general__sales_channel_id": "luma",
                "mcom__message_log__prune_days": "soon",
                "web__base_url": "ftp://x",
            },
        )
    )
    assert "Please correct the errors below." in page
    assert "expected a whole number" in page
    assert "not an http(s) URL" in page
    assert 'class="form-row errors field-mcom__message_log__prune_days"' in page
    assert not ConfigValue.objects.exists()


def test_configuration_refuses_an_unknown_order_status(operator_client: Client) -> None:
    page = html(_post_config(operator_client, {"mcom__orders__export_statuses": ["pending", "bogus"]}))
    assert "Select a valid choice" in page
    assert config.get("mcom/orders/export_statuses") == ["pending"]


def test_store_scope_overrides_and_use_default(operator_client: Client, db: None) -> None:
    Store.objects.create(code="fr", name="French")
    config.set_value("mcom/general/sales_channel_id", "luma")
    page = html(operator_client.get(reverse("mcom_admin:configuration") + "?store=fr"))
    assert "Store view: French (fr)" in page
    assert "Use default" in page
    assert "Set in the default scope only." in page  # prune settings
    assert 'name="mcom__message_log__prune_days"' in page
    assert "disabled" in page

    inherit = {
        f"{k}__use_default": "on"
        for k in (
            "mcom__transport__process_order_synchronously",
            "mcom__orders__export_statuses",
            "mcom__catalog__custom_attributes",
            "web__base_url",
        )
    }
    html(_post_config(operator_client, {**inherit, "mcom__general__sales_channel_id": "luma-fr"}, store="fr"))
    assert config.get("mcom/general/sales_channel_id", "fr") == "luma-fr"
    assert config.get("mcom/general/sales_channel_id") == "luma"
    assert ConfigValue.objects.filter(scope="store").count() == 1

    html(
        _post_config(
            operator_client, {**inherit, "mcom__general__sales_channel_id__use_default": "on"}, store="fr"
        )
    )
    assert config.get("mcom/general/sales_channel_id", "fr") == "luma"
    assert not ConfigValue.objects.filter(scope="store").exists()


def test_unknown_store_falls_back_to_the_default_scope(operator_client: Client) -> None:
    page = html(operator_client.get(reverse("mcom_admin:configuration") + "?store=nope"))
    assert "Unknown store" in page
    assert "Default config" in page


# ----------------------------------------------------------------------------------- message log


def test_message_log_filters_searches_and_counts(operator_client: Client) -> None:
    day = timezone.now() - timedelta(days=3)
    make_message(
        direction=LoggedMessage.IN, topic="t.stock", entity_key="sku:A", status=LoggedMessage.COMPLETE
    )
    make_message(
        direction=LoggedMessage.OUT, topic="t.order", entity_key="order:000000042", status=LoggedMessage.ERROR
    )
    make_message(
        direction=LoggedMessage.OUT,
        topic="t.order",
        entity_key="order:7",
        status=LoggedMessage.RETRY,
        created_at=day,
    )
    url = reverse("mcom_admin:messages")

    def ids(query: dict[str, str]) -> set[str]:
        page = html(operator_client.get(url, query))
        return {k for k in ("sku:A", "order:000000042", "order:7") if f"<td>{k}</td>" in page}

    assert ids({}) == {"sku:A", "order:000000042", "order:7"}
    assert ids({"direction": "out"}) == {"order:000000042", "order:7"}
    assert ids({"status": "error"}) == {"order:000000042"}
    assert ids({"topic": "t.stock"}) == {"sku:A"}
    assert ids({"q": "0000042"}) == {"order:000000042"}
    assert ids({"date_to": day.date().isoformat()}) == {"order:7"}
    assert ids({"date_from": timezone.now().date().isoformat()}) == {"sku:A", "order:000000042"}
    page = html(operator_client.get(url, {"direction": "out"}))
    assert "Error (1)" in page
    assert "Retry (1)" in page
    assert "Complete (0)" in page
    assert "All (2)" in page


def test_message_log_paginates(operator_client: Client) -> None:
    LoggedMessage.objects.bulk_create(
        [
            LoggedMessage(direction="in", topic="t", message_id=f"m{i}", entity_key=f"k{i}", payload="{}")
            for i in range(120)
        ]
    )
    url = reverse("mcom_admin:messages")
    first = html(operator_client.get(url, {"status": "new"}))
    assert "Page 1 of 3" in first
    assert "120 messages" in first
    assert "status=new&amp;p=2" in first
    last = html(operator_client.get(url, {"status": "new", "p": "3"}))
    assert "Page 3 of 3" in last
    assert len(re.findall(r'href="/admin/mcom/messages/\d+/"', last)) == 20


def test_message_detail_pretty_prints_payload_and_result(operator_client: Client) -> None:
    msg = make_message(
        payload=json.dumps({"order": {"id": "000000001", "lines": [1, 2]}}),
        result=json.dumps({"ok": True}),
        status=LoggedMessage.ERROR,
        last_error="RetryLater: order 000000001 not known yet",
        attempts=3,
    )
    page = html(operator_client.get(reverse("mcom_admin:message", args=[msg.pk])))
    assert "{\n  &quot;order&quot;: {\n    &quot;id&quot;: &quot;000000001&quot;" in page
    assert "&quot;ok&quot;: true" in page
    assert "order 000000001 not known yet" in page
    assert ">Retry<" in page
    assert ">Ignore<" in page


def test_retry_and_ignore_go_through_the_worker(operator_client: Client) -> None:
    msg = make_message(
        status=LoggedMessage.ERROR, attempts=10, next_attempt_at=timezone.now() + timedelta(days=1)
    )
    page = html(operator_client.post(reverse("mcom_admin:message_retry", args=[msg.pk]), follow=True))
    assert "is due again" in page
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.RETRY
    assert msg.next_attempt_at <= timezone.now()
    html(operator_client.post(reverse("mcom_admin:message_ignore", args=[msg.pk]), follow=True))
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.IGNORED


def test_a_complete_message_cannot_be_retried(operator_client: Client) -> None:
    msg = make_message(status=LoggedMessage.COMPLETE)
    page = html(operator_client.post(reverse("mcom_admin:message_retry", args=[msg.pk]), follow=True))
    assert "cannot be retried" in page
    msg.refresh_from_db()
    assert msg.status == LoggedMessage.COMPLETE
    assert operator_client.get(reverse("mcom_admin:message", args=[999999])).status_code == 404


# -------------------------------------------------------------------------------- catalog export


def test_catalog_export_schedule_then_cancel(operator_client: Client) -> None:
    from mcom.catalog.models import CatalogExportTask

    page = html(operator_client.get(reverse("mcom_admin:catalog_export")))
    assert "No catalog export has run yet." in page
    page = html(operator_client.post(reverse("mcom_admin:catalog_export_schedule"), follow=True))
    assert "scheduled" in page
    assert "Pending" in page
    assert ">Cancel export<" in page
    page = html(operator_client.post(reverse("mcom_admin:catalog_export_schedule"), follow=True))
    assert "already open" in page
    page = html(operator_client.post(reverse("mcom_admin:catalog_export_cancel"), follow=True))
    assert "cancelled" in page
    assert CatalogExportTask.objects.get().status == CatalogExportTask.CANCELLED
    page = html(operator_client.post(reverse("mcom_admin:catalog_export_cancel"), follow=True))
    assert "No pending or running catalog export to cancel" in page


def test_catalog_export_runs_in_a_background_thread(transactional_db: None, operator: Any) -> None:
    from mcom.adminui import background
    from mcom.catalog.models import CatalogExportTask
    from mcom.commerce.models import Product

    Product.objects.bulk_create([Product(sku=f"SKU-{i}", name=f"Product {i}") for i in range(5)])
    c = Client()
    c.force_login(operator)
    page = html(c.post(reverse("mcom_admin:catalog_export_run"), follow=True))
    assert "started" in page
    background.wait()
    task = CatalogExportTask.objects.get()
    assert task.status == CatalogExportTask.COMPLETE
    assert task.requested_by == "admin"
    assert task.processed == task.total >= 5
    state = c.get(reverse("mcom_admin:catalog_export_status")).json()
    assert state["status"] == "complete"
    assert state["open"] is False
    assert state["percent"] == 100.0


# ------------------------------------------------------------------------------------ change log


def test_changelog_renders_markdown_and_escapes_html(
    operator_client: Client, tmp_path: Path, monkeypatch: Any
) -> None:
    md = tmp_path / "CHANGELOG.md"
    md.write_text(
        "# Changelog\n\n## 0.1.0\n\n- first `code` item\n- <script>alert(1)</script>\n\n[x](javascript:alert(1))\n"
    )
    monkeypatch.setattr(changelog, "_candidates", lambda: [md])
    page = html(operator_client.get(reverse("mcom_admin:changelog")))
    assert "<h1>Changelog</h1>" in page
    assert "<h2>0.1.0</h2>" in page
    assert "<li>first <code>code</code> item</li>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert 'href="javascript:' not in page


def test_changelog_falls_back_to_package_data_or_says_it_is_missing(
    operator_client: Client, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(changelog, "_candidates", lambda: [tmp_path / "absent.md"])
    page = html(operator_client.get(reverse("mcom_admin:changelog")))
    found = changelog.read_text()
    if found is None:
        assert "No change log found" in page
    else:
        assert "package data" in found[0]


# --------------------------------------------------------------------------------- system report


def test_system_report_lists_versions_modules_database_queue_and_cron(
    operator_client: Client, env: Any
) -> None:
    import django

    import mcom

    env(modules=["sales", "catalog"])
    make_message(direction=LoggedMessage.OUT, status=LoggedMessage.ERROR)
    CronJobState.objects.create(
        name="service_bus.process", last_started_at=timezone.now(), last_finished_at=timezone.now()
    )
    page = html(operator_client.get(reverse("mcom_admin:system_report")))
    assert mcom.__version__ in page
    assert django.get_version() in page
    assert ("SQLite" in page) or ("PostgreSQL" in page)
    assert "inventory</th><td>" in page
    assert ">Disabled<" in page
    assert ">Enabled<" in page
    assert "service_bus.process" in page
    assert "?direction=out&amp;status=error" in page


# --------------------------------------------------------------------------------- connector log


def test_connector_log_tails_filters_by_level_and_masks_secrets(
    operator_client: Client, secrets_env: Any
) -> None:
    from tests.admin.conftest import BUS_SECRET

    path = instance.log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"2025-01-01 00:00:{i % 60:02d},000 INFO [mcom.x] line {i}" for i in range(300)]
    lines.append(f"2025-01-01 00:01:00,000 ERROR [mcom.y] boom with {BUS_SECRET}")
    lines.append("Traceback (most recent call last):")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = html(operator_client.get(reverse("mcom_admin:connector_log")))
    assert "line 299" in page
    assert "line 50<" not in page
    assert BUS_SECRET not in page
    assert "boom with ***" in page
    page = html(operator_client.get(reverse("mcom_admin:connector_log"), {"level": "ERROR", "lines": "1000"}))
    assert "boom with ***" in page
    assert "Traceback" in page
    assert "line 299" not in page


def test_dashboard_says_what_needs_attention(operator_client: Client, env: Any) -> None:
    env(service_bus__url="")
    Store.objects.create(code="fr", name="French")
    make_message(status=LoggedMessage.ERROR)
    page = html(operator_client.get(reverse("mcom_admin:dashboard")))
    assert "Needs attention" in page
    assert "service_bus.url is missing" in page
    assert "never registered" in page
    assert "Store “fr” has no Sales Channel ID: its orders are not exported." in page
    assert 'href="/admin/mcom/configuration/?store=fr"' in page
    assert "1 message in error." in page
    config.set_value("mcom/general/sales_channel_id", "luma")
    assert "Sales Channel ID" not in html(operator_client.get(reverse("mcom_admin:dashboard")))


def test_catalog_export_page_shows_product_sync(operator_client: Client) -> None:
    from mcom.catalog.models import ProductSync
    from mcom.commerce.models import Product

    a = Product.objects.create(sku="SYNC-A", name="A")
    b = Product.objects.create(sku="SYNC-B", name="B")
    Product.objects.create(sku="SYNC-C", name="C")
    ProductSync.objects.create(product=a, last_queued_at=timezone.now(), last_synced_at=timezone.now())
    ProductSync.objects.create(product=b, last_queued_at=timezone.now(), last_error="OmsRejected: bad sku")
    page = html(operator_client.get(reverse("mcom_admin:catalog_export")))
    assert "Received by the OMS</th><td>1</td>" in page
    assert "Last sync failed</th><td>1</td>" in page
    assert "SYNC-B" in page
    assert "OmsRejected: bad sku" in page


def test_connector_log_filters_by_order_and_reads_json_lines(operator_client: Client) -> None:
    path = instance.log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([
        "2025-01-01 00:00:01,000 INFO [mcom.sales] order 000000004 exported to the OMS (message 12)",
        "2025-01-01 00:00:02,000 INFO [mcom.sales] order 000000005 exported to the OMS (message 13)",
        json.dumps({"time": "2025-01-01 00:00:03", "level": "WARNING", "logger": "mcom.service_bus.events",
                    "message": "message 14 parked: RetryLater: x [t order:000000004]"}),
    ]) + "\n", encoding="utf-8")
    page = html(operator_client.get(reverse("mcom_admin:connector_log"), {"entity": "000000004"}))
    assert "message 12" in page
    assert "message 14 parked" in page
    assert "000000005" not in page
    page = html(operator_client.get(reverse("mcom_admin:connector_log"), {"entity": "000000004", "level": "WARNING"}))
    assert "message 14 parked" in page
    assert "message 12" not in page


# ------------------------------------------------------------------- mass actions, timings, history


def test_mass_retry_and_ignore_of_selected_messages(operator_client: Client) -> None:
    failed = [make_message(status=LoggedMessage.ERROR, entity_key=f"order:{n}") for n in range(3)]
    done = make_message(status=LoggedMessage.COMPLETE)
    url = reverse("mcom_admin:message_mass_action")
    page = html(operator_client.get(reverse("mcom_admin:messages")))
    assert f'name="ids" value="{failed[0].pk}"' in page
    assert "Retry selected messages" in page
    response = operator_client.post(url, {"action": "retry", "ids": [m.pk for m in failed] + [done.pk],
                                          "next": reverse("mcom_admin:messages") + "?status=error"}, follow=True)
    assert response.redirect_chain[-1][0].endswith("?status=error")
    assert "3 messages queued for retry. 1 skipped" in response.content.decode()
    assert set(LoggedMessage.objects.filter(pk__in=[m.pk for m in failed]).values_list("status", flat=True)) == {
        LoggedMessage.RETRY}
    operator_client.post(url, {"action": "ignore", "ids": [failed[0].pk]})
    assert LoggedMessage.objects.get(pk=failed[0].pk).status == LoggedMessage.IGNORED
    assert LoggedMessage.objects.get(pk=done.pk).status == LoggedMessage.COMPLETE
    bad = operator_client.post(url, {"action": "delete", "ids": [done.pk]}, follow=True)
    assert "Choose an action" in bad.content.decode()


def test_readers_see_no_mass_action_and_may_not_post_one(reader_client: Client) -> None:
    msg = make_message(status=LoggedMessage.ERROR)
    assert "Retry selected messages" not in html(reader_client.get(reverse("mcom_admin:messages")))
    r = reader_client.post(reverse("mcom_admin:message_mass_action"), {"action": "retry", "ids": [msg.pk]})
    assert r.status_code == 403
    assert LoggedMessage.objects.get(pk=msg.pk).status == LoggedMessage.ERROR


def test_message_detail_shows_timing_and_the_attempt_history(operator_client: Client) -> None:
    from mcom.service_bus import events

    now = timezone.now()
    msg = make_message(status=LoggedMessage.ERROR, created_at=now - timedelta(seconds=3), processed_at=now,
                       attempts=2, last_error="OmsRejected: no")
    for n, status in ((1, "retry"), (2, "error")):
        try:
            raise ValueError(f"attempt {n} went wrong")
        except ValueError as e:
            events.attempt_failed(log_id=msg.pk, direction=msg.direction, topic=msg.topic, entity_key=msg.entity_key,
                                  attempt=n, status=status, reason=f"ValueError: {e}", error=e)
    page = html(operator_client.get(reverse("mcom_admin:message", args=[msg.pk])))
    assert "Received → applied" in page
    assert "3.0 s" in page
    assert "History (2 failed attempts)" in page
    assert "attempt 1 went wrong" in page
    assert "attempt 2 went wrong" in page
    assert "Traceback" in page


def test_integration_page_enables_and_disables(operator_client: Client, reader_client: Client) -> None:
    from mcom.service_bus import integration

    page = html(operator_client.get(reverse("mcom_admin:integration")))
    assert ">Disable<" in page
    assert "Enabled" in page
    assert reader_client.post(reverse("mcom_admin:integration_disable")).status_code == 403
    try:
        operator_client.post(reverse("mcom_admin:integration_disable"), {"reason": "OMS upgrade"})
        assert not integration.enabled()
        dashboard = html(operator_client.get(reverse("mcom_admin:dashboard")))
        assert "Disabled" in dashboard
        assert "OMS upgrade" in dashboard
        assert "admin:operator" in dashboard
        assert ">Enable<" in html(operator_client.get(reverse("mcom_admin:integration")))
        operator_client.post(reverse("mcom_admin:integration_enable"))
        assert integration.enabled()
    finally:
        integration.enable(by="test")


def test_dashboard_title(operator_client: Client) -> None:
    page = html(operator_client.get(reverse("mcom_admin:dashboard")))
    assert "<title>MCOM dashboard | Commerce Admin</title>" in page
    assert "MCOM | MCOM" not in page
