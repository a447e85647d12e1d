"""A small server-rendered SVG bar chart of message activity (no JavaScript, no external assets).

The y axis is logarithmic (``log10(1 + n)``): 2 incoming messages and 3 errors stay visible next to
20,000 outgoing ones. Three bars per hour (incoming, outgoing, errors); an hour with errors also
gets a red dot above its error bar, so a single error cannot be missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mcom.observability.activity import HourBucket

WIDTH = 720
HEIGHT = 200
LEFT = 44  # room for the y axis labels
BOTTOM = 22  # room for the x axis labels
TOP = 10


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    plot_bottom: float
    incoming: list[Bar]
    outgoing: list[Bar]
    errors: list[Bar]
    error_dots: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    total_in: int
    total_out: int
    total_errors: int


def _decades(value: int) -> int:
    """The number of powers of ten the axis needs to hold ``value`` (at least 1: 0…10)."""
    return max(1, math.ceil(math.log10(max(value, 1) + 1)))


def _label(v: int) -> str:
    return f"{v // 1000}k" if v >= 10_000 else str(v)


def build(buckets: list[HourBucket]) -> Chart:
    """Lay out ``buckets`` (oldest first): three bars per hour on a log scale, dots for errors."""
    n = max(len(buckets), 1)
    decades = _decades(max([max(b.incoming, b.outgoing, b.errors) for b in buckets] or [0]))
    top = math.log10(10**decades + 1)
    plot_w = WIDTH - LEFT - 4
    plot_h = HEIGHT - BOTTOM - TOP
    bottom = float(TOP + plot_h)
    slot = plot_w / n
    bar_w = max(slot * 0.27, 1.0)

    def y_of(v: int) -> float:
        return round(bottom - (math.log10(v + 1) / top) * plot_h, 1)

    def bar(x: float, v: int, label: str) -> Bar:
        return Bar(round(x, 1), y_of(v), round(bar_w, 1), round(bottom - y_of(v), 1), v, label)

    incoming: list[Bar] = []
    outgoing: list[Bar] = []
    errors: list[Bar] = []
    dots: list[Bar] = []
    x_ticks: list[Tick] = []
    for i, b in enumerate(buckets):
        x0 = LEFT + i * slot + slot * 0.095
        hour = b.start.strftime("%H:00")
        incoming.append(bar(x0, b.incoming, hour))
        outgoing.append(bar(x0 + bar_w, b.outgoing, hour))
        errors.append(bar(x0 + 2 * bar_w, b.errors, hour))
        if b.errors:
            dots.append(Bar(round(x0 + 2.5 * bar_w, 1), round(y_of(b.errors) - 4, 1), 0, 0, b.errors, hour))
        if i % 3 == 0:
            x_ticks.append(Tick(round(LEFT + i * slot + slot / 2, 1), hour))
    y_ticks = [Tick(y_of(0), "0")] + [Tick(y_of(10**d), _label(10**d)) for d in range(decades + 1)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        plot_bottom=bottom,
        incoming=incoming,
        outgoing=outgoing,
        errors=errors,
        error_dots=dots,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        total_in=sum(b.incoming for b in buckets),
        total_out=sum(b.outgoing for b in buckets),
        total_errors=sum(b.errors for b in buckets),
    )
