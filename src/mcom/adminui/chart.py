"""A small server-rendered SVG bar chart of message activity (no JavaScript, no external assets)."""

from __future__ import annotations

from dataclasses import dataclass

from mcom.adminui.report import HourBucket

WIDTH = 720
HEIGHT = 200
LEFT = 36  # room for the y axis labels
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
    error_points: str  # polyline "x,y x,y …"
    error_dots: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    total_in: int
    total_out: int
    total_errors: int


def _nice_max(value: int) -> int:
    for step in (4, 10, 20, 40, 100, 200, 400, 1000, 2000, 4000, 10000):
        if value <= step:
            return step
    return ((value // 10000) + 1) * 10000


def build(buckets: list[HourBucket]) -> Chart:
    """Lay out ``buckets`` (oldest first): two bars per hour (in, out) and an error line."""
    n = max(len(buckets), 1)
    top_value = _nice_max(max([max(b.incoming, b.outgoing, b.errors) for b in buckets] or [0]))
    plot_w = WIDTH - LEFT - 4
    plot_h = HEIGHT - BOTTOM - TOP
    bottom = float(TOP + plot_h)
    slot = plot_w / n
    bar_w = max(slot * 0.38, 1.0)

    def y_of(v: int) -> float:
        return round(bottom - (v / top_value) * plot_h, 1)

    incoming: list[Bar] = []
    outgoing: list[Bar] = []
    dots: list[Bar] = []
    points: list[str] = []
    x_ticks: list[Tick] = []
    for i, b in enumerate(buckets):
        x0 = LEFT + i * slot
        hour = b.start.strftime("%H:00")
        incoming.append(
            Bar(
                round(x0 + slot * 0.1, 1),
                y_of(b.incoming),
                round(bar_w, 1),
                round(bottom - y_of(b.incoming), 1),
                b.incoming,
                hour,
            )
        )
        outgoing.append(
            Bar(
                round(x0 + slot * 0.1 + bar_w, 1),
                y_of(b.outgoing),
                round(bar_w, 1),
                round(bottom - y_of(b.outgoing), 1),
                b.outgoing,
                hour,
            )
        )
        cx = round(x0 + slot / 2, 1)
        points.append(f"{cx},{y_of(b.errors)}")
        if b.errors:
            dots.append(Bar(cx, y_of(b.errors), 0, 0, b.errors, hour))
        if i % 3 == 0:
            x_ticks.append(Tick(cx, hour))
    y_ticks = [Tick(y_of(v), str(v)) for v in (0, top_value // 2, top_value)]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        plot_bottom=bottom,
        incoming=incoming,
        outgoing=outgoing,
        error_points=" ".join(points),
        error_dots=dots,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        total_in=sum(b.incoming for b in buckets),
        total_out=sum(b.outgoing for b in buckets),
        total_errors=sum(b.errors for b in buckets),
    )
