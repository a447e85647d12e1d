"""Plugins used by the plugin tests (referenced by name from env.toml-style lists and entry points)."""

from __future__ import annotations

from typing import Any

from mcom.sales.messages import OrderLine, OrderSpec

CALLS: list[str] = []


class First:
    def after_line_to_specification(self, item: Any, line: OrderLine) -> OrderLine:
        CALLS.append(f"first:{line.id}")
        return line.with_attribute("trail", (line.attribute("trail") or "") + "1")


class Second:
    def after_line_to_specification(self, item: Any, line: OrderLine) -> OrderLine:
        CALLS.append(f"second:{line.id}")
        return line.with_attribute("trail", (line.attribute("trail") or "") + "2")

    def after_order_to_specification(self, order: Any, spec: OrderSpec) -> OrderSpec:
        return spec.with_attribute("channel_tag", f"{order.increment_id}-{len(spec.lines)}")


def zone(item: Any, line: OrderLine) -> OrderLine:
    """A plain function: in the ``mcom.sales.line_mapper`` group it is the line hook."""
    return line.with_attribute("warehouse_zone", "Z-" + item.sku[:1])


class Broken:
    def after_line_to_specification(self, item: Any, line: OrderLine) -> OrderLine:
        raise KeyError("no such option")


class ReturnsNone:
    def after_line_to_specification(self, item: Any, line: OrderLine) -> OrderLine:
        return None  # type: ignore[return-value]


class ChangesId:
    def after_line_to_specification(self, item: Any, line: OrderLine) -> OrderLine:
        from dataclasses import replace

        return replace(line, id="other")


class Nothing:
    pass


def after_line_to_specification(item: Any, line: OrderLine) -> OrderLine:
    """Module-level hook: ``plugins = ["tests.sales.sample_plugins"]`` uses the module itself."""
    return line.with_attribute("module_hook", "yes")


def broken_order_hook(order: Any, spec: OrderSpec) -> OrderSpec:
    raise RuntimeError("order plugin exploded")
