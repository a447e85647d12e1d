"""The catalog-export commands' argument handling and messages."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mcom.catalog.models import CatalogExportTask as Task
from mcom.cli.main import main

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "args",
    [["-s", "--schedule-only"], ["--schedule-only", "-s"], ["-s", "--cancel", "--schedule-only"]],
)
def test_short_and_long_schedule_option_together_is_one_clear_error(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["oms:catalog-export:run", *args])
    assert result.exit_code == 2
    assert "use either -s (short form) or --schedule-only (long form), not both" in result.output
    assert not Task.objects.exists()


@pytest.mark.parametrize("flag", ["-s", "--schedule-only"])
def test_either_form_schedules(flag: str) -> None:
    result = CliRunner().invoke(main, ["oms:catalog-export:run", flag])
    assert result.exit_code == 0, result.output
    assert Task.objects.get().status == Task.PENDING


def test_status_without_any_export() -> None:
    result = CliRunner().invoke(main, ["oms:catalog-export:status"])
    assert result.exit_code == 0
    assert "No catalog export has been run yet." in result.output


def test_schedule_twice_and_cancel_with_nothing_open_are_one_line_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["oms:catalog-export:run", "-s"]).exit_code == 0
    again = runner.invoke(main, ["oms:catalog-export:run", "-s"])
    assert again.exit_code == 1
    assert "already open" in again.output
    cancelled = runner.invoke(main, ["oms:catalog-export:run", "--cancel"])
    assert cancelled.exit_code == 0
    assert "cancelled (0/0 exported)" in cancelled.output
    none = runner.invoke(main, ["oms:catalog-export:run", "--cancel"])
    assert none.exit_code == 1
    assert none.output.strip() == "Error: no pending or running catalog export to cancel"


def test_cancel_with_schedule_only_is_refused() -> None:
    result = CliRunner().invoke(main, ["oms:catalog-export:run", "-s", "--cancel"])
    assert result.exit_code == 1
    assert "cannot be combined" in result.output
