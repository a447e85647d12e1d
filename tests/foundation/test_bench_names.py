"""The benchmarks' old PostgreSQL overrides (``MCOM_BENCH_PG``, ``MCOM_BENCH_PG_URL``) still work and
never reach the instance config loader, which refuses unknown ``MCOM_*`` keys."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mcom import envconfig

BENCH_COMMON = Path(__file__).resolve().parents[2] / "bench" / "common.py"


def bench_common(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("bench_common_under_test", BENCH_COMMON)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_old_names_become_the_bench_names_and_leave_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    environ["MCOM_BENCH_PG"] = "postgresql://bench@db.test:5433"
    environ["MCOM_BENCH_PG_URL"] = "postgresql://bench@db.test:5433/postgres"
    with pytest.raises(envconfig.ConfigError, match="bench_pg"):  # why they must not stay
        envconfig.load(environ=environ)
    monkeypatch.setattr(os, "environ", environ)  # the module reads and cleans this one
    common = bench_common(monkeypatch)  # adopts them on import, as every benchmark does
    assert common.PG_SERVER == "postgresql://bench@db.test:5433"
    assert environ["BENCH_PG_URL"] == "postgresql://bench@db.test:5433/postgres"
    assert "MCOM_BENCH_PG" not in environ
    assert "MCOM_BENCH_PG_URL" not in environ
    envconfig.load(environ=environ)  # what a benchmark's child loads: accepted


def test_a_bench_name_set_too_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    common = bench_common(monkeypatch)
    env = {"MCOM_BENCH_PG": "postgresql://old@db.test", "BENCH_PG": "postgresql://new@db.test"}
    common.adopt_old_names(env)
    assert env == {"BENCH_PG": "postgresql://new@db.test"}
