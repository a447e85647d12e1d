"""Pruning of finished rows and the cron runner (due jobs, overlap safety, CLI summary)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from django.utils import timezone

from mcom.cli.main import main
from mcom.service_bus import cron, prune, registry
from mcom.service_bus.models import CronJobState, LoggedMessage

pytestmark = pytest.mark.django_db


def _row(i: int, status: str, age_days: float) -> LoggedMessage:
    at = timezone.now() - timedelta(days=age_days)
    return LoggedMessage.objects.create(
        direction="in", topic="t", message_id=f"m{i}", entity_key="k", payload="{}", status=status, created_at=at
    )


def test_prune_removes_only_old_finished_rows(monkeypatch: Any) -> None:
    monkeypatch.setattr(prune, "BATCH", 3)  # several delete statements
    old_finished = [_row(i, s, 40) for i, s in enumerate(["complete"] * 5 + ["ignored"] * 2)]
    kept = [_row(100 + i, s, 40) for i, s in enumerate(["new", "retry", "processing", "error"])]
    kept += [_row(200, "complete", 10), _row(201, "ignored", 29)]
    assert prune.prune() == len(old_finished)  # default: 30 days
    assert set(LoggedMessage.objects.values_list("id", flat=True)) == {r.pk for r in kept}
    assert prune.prune(days=5) == 2


def test_prune_command_reports_rows_removed() -> None:
    _row(1, "complete", 40)
    result = CliRunner().invoke(main, ["oms:queue:prune"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 message from the message log." in result.output


def test_prune_job_honours_store_config() -> None:
    from mcom.commerce import config

    _row(1, "complete", 12)
    config.set_value("mcom/message_log/prune_days", "10")
    config.set_value("mcom/message_log/prune_enabled", "0")
    assert prune.prune_if_enabled() == 0
    config.set_value("mcom/message_log/prune_enabled", "1")
    assert prune.prune_if_enabled() == 1


@pytest.fixture
def counting_job() -> Any:
    calls: list[int] = []
    registry.cron_job("test.counting", every_seconds=60)(lambda: calls.append(1) or len(calls))
    yield calls
    registry._registry.cron.pop("test.counting", None)


def test_run_due_runs_due_jobs_once_per_interval(counting_job: list[int]) -> None:
    now = timezone.now()
    runs = cron.run_due(now=now, only="test.counting")
    assert [(r.name, r.ok, r.result) for r in runs] == [("test.counting", True, 1)]
    assert cron.run_due(now=now + timedelta(seconds=30), only="test.counting") == []
    assert len(cron.run_due(now=now + timedelta(seconds=61), only="test.counting")) == 1
    assert len(cron.run_due(now=now + timedelta(seconds=62), force=True, only="test.counting")) == 1
    state = CronJobState.objects.get(name="test.counting")
    assert state.locked_until is None
    assert state.last_error == ""


def test_overlapping_pass_does_not_run_a_locked_job(counting_job: list[int]) -> None:
    now = timezone.now()
    cron.run_due(now=now, only="test.counting")  # creates the state row
    CronJobState.objects.filter(name="test.counting").update(locked_until=now + timedelta(minutes=5))
    assert cron.run_due(now=now + timedelta(minutes=2), force=True, only="test.counting") == []
    assert len(cron.run_due(now=now + timedelta(minutes=6), only="test.counting")) == 1  # lock expired


def test_failing_job_is_recorded_and_others_still_run(counting_job: list[int]) -> None:
    def boom() -> None:
        raise RuntimeError("broken job")

    registry.cron_job("test.boom", every_seconds=60)(boom)
    try:
        runs = {r.name: r for r in cron.run_due(force=True)}
        assert not runs["test.boom"].ok
        assert "RuntimeError: broken job" in runs["test.boom"].error
        assert runs["test.counting"].ok
        assert CronJobState.objects.get(name="test.boom").last_error == "RuntimeError: broken job"
    finally:
        registry._registry.cron.pop("test.boom", None)


def test_bus_jobs_are_registered_and_cron_run_prints_a_summary() -> None:
    names = {j.name for j in registry.cron_jobs()}
    assert {"service_bus.process_inbound", "service_bus.send_outbound", "service_bus.prune"} <= names
    result = CliRunner().invoke(main, ["cron:run", "--job", "service_bus.process_inbound"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ran 1 job: service_bus.process_inbound (0,")


def test_queue_retry_command(db: None) -> None:
    msg = _row(1, "error", 0)
    result = CliRunner().invoke(main, ["oms:queue:retry", str(msg.pk)])
    assert result.exit_code == 0
    assert "queued for retry" in result.output
    assert LoggedMessage.objects.get(pk=msg.pk).status == "retry"
    result = CliRunner().invoke(main, ["oms:queue:retry", "999999"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
