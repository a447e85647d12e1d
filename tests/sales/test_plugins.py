"""Line/order after-plugins: discovery (entry points, env.toml list), run order, failures named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.sales import sample_plugins
from tests.sales.conftest import unit_addresses, unit_item, unit_order

from mcom.sales import mappers, plugins
from mcom.sales.plugins import PluginError

MOD = "tests.sales.sample_plugins"
# entry points of examples/mcom-example-plugin, present when it is installed in the environment
EXAMPLE = {"mcom_example_warehouse_zone", "mcom_example_order_tag"}


def names(hooks: Any) -> list[str]:
    return [h.name for h in hooks if h.name not in EXAMPLE]


def run(pset: plugins.PluginSet, qty: int = 1) -> Any:
    order = unit_order()
    return mappers.order_to_specification(order, items=[unit_item(5, "SKU-A", qty, "10")],
                                          addresses=unit_addresses(order), sales_channel_id="c", plugins=pset)


@pytest.fixture(autouse=True)
def _calls() -> Iterator[None]:
    sample_plugins.CALLS.clear()
    return


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``dist({"mcom.sales.line_mapper": {"b": "mod:obj"}})``: a real installed-distribution metadata dir."""

    def make(groups: dict[str, dict[str, str]]) -> None:
        info = tmp_path / "mcom_test_plugins-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcom-test-plugins\nVersion: 1.0\n")
        lines = []
        for group, entries in groups.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {value}" for name, value in entries.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    return make


def test_env_plugins_run_in_list_order_on_every_unit_line() -> None:
    spec = run(plugins.load([f"{MOD}:Second", f"{MOD}:First"]), qty=2)
    assert [ln.attribute("trail") for ln in spec.lines[:2]] == ["21", "21"]
    assert sample_plugins.CALLS == ["second:5-1", "first:5-1", "second:5-2", "first:5-2"]
    assert spec.lines[-1].id == "SHIPPING"
    assert spec.lines[-1].attribute("trail") is None
    assert ("channel_tag", "000000042-3") in [(a.attribute_code, a.value) for a in spec.custom_attributes]


def test_entry_points_sorted_by_name_then_env_plugins(dist: Any) -> None:
    dist({"mcom.sales.line_mapper": {"b_second": f"{MOD}:Second", "a_first": f"{MOD}:First", "zone": f"{MOD}:zone"},
          "mcom.sales.order_mapper": {"tag": f"{MOD}:Second"}})
    pset = plugins.load([f"{MOD}"])
    assert names(pset.line_hooks) == ["a_first", "b_second", "zone", MOD]
    assert names(pset.order_hooks) == ["tag"]
    line = run(pset).lines[0]
    assert line.attribute("trail") == "12"
    assert line.attribute("warehouse_zone") == "Z-S"
    assert line.attribute("module_hook") == "yes"


def test_a_plugin_found_twice_runs_once(dist: Any) -> None:
    dist({"mcom.sales.line_mapper": {"first": f"{MOD}:First"}})
    pset = plugins.load([f"{MOD}:First"])
    assert names(pset.line_hooks) == ["first"]


@pytest.mark.parametrize(("ref", "message"), [
    (f"{MOD}:Broken", "plugin 'tests.sales.sample_plugins:Broken' failed: KeyError: 'no such option'"),
    (f"{MOD}:ReturnsNone", "plugin 'tests.sales.sample_plugins:ReturnsNone' failed: returned NoneType, expected OrderLine"),
    (f"{MOD}:ChangesId", "must not change the line's id or line_number"),
    (f"{MOD}:broken_order_hook", "has neither after_line_to_specification() nor after_order_to_specification()"),
    (f"{MOD}:Nothing", "plugin 'tests.sales.sample_plugins:Nothing' failed: has neither"),
    ("tests.sales.no_such_module:X", "plugin 'tests.sales.no_such_module:X' failed: cannot be loaded: ModuleNotFoundError"),
])
def test_failing_plugin_fails_the_mapping_with_its_name(ref: str, message: str) -> None:
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        run(plugins.load([f"{MOD}:First", ref]))
    assert info.value.plugin == ref


def test_failing_order_entry_point_is_named(dist: Any) -> None:
    dist({"mcom.sales.order_mapper": {"exploding": f"{MOD}:broken_order_hook"}})
    with pytest.raises(PluginError, match="plugin 'exploding' failed: RuntimeError: order plugin exploded"):
        run(plugins.load([]))


def test_current_follows_env_plugins(env: Any) -> None:
    env(plugins=[f"{MOD}:First"])
    assert names(plugins.current().line_hooks) == [f"{MOD}:First"]
    env(plugins=[f"{MOD}:Second"])
    assert names(plugins.current().line_hooks) == [f"{MOD}:Second"]
