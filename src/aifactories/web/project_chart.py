"""The GPU-hours a project used over time, drawn by the server as an SVG chart: a step line of
the running total, axes labelled in GPU-hours and dates (UTC days). No script: the page shows
the same numbers in a table for screen readers and for anyone who prefers figures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from aifactories.services.programme.project_views import UsageSeries
from aifactories.web.templating import gpu_hours

DAY_S = 86400
WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 20, 16, 52  # room for the axes' labels
X_TICKS = 4


@dataclass(frozen=True)
class Tick:
    at: float  # in the chart's coordinates (x for dates, y for GPU-hours)
    label: str
    anchor: str = "end"  # how its label sits on it (SVG text-anchor)


@dataclass(frozen=True)
class UsageChart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the plot's baseline
    path: str  # the running total, as SVG path data
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    summary: str  # the chart in one sentence (its <desc>)


def day_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (so the
    axis reads in round numbers)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def usage_chart(series: UsageSeries) -> UsageChart:
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    # whole UTC days, so that the date ticks fall on days and no date shows twice
    first = math.floor(series.starts_at / DAY_S) * DAY_S
    days = max(1, math.ceil((series.ends_at - first) / DAY_S))
    last = first + days * DAY_S
    top_hours = nice_ceiling(series.used_gpu_seconds / 3600)

    def x(epoch: float) -> float:
        return LEFT + (right - LEFT) * (min(max(epoch, first), last) - first) / (last - first)

    def y(gpu_seconds: float) -> float:
        return bottom - (bottom - TOP) * (gpu_seconds / 3600) / top_hours

    points = [f"M{x(first):.1f},{y(0):.1f}"]
    for day in series.days:
        points.append(f"H{x(day.day):.1f}V{y(day.total_gpu_seconds):.1f}")
    points.append(f"H{x(series.ends_at):.1f}")
    step = math.ceil(days / X_TICKS)
    x_ticks = tuple(
        Tick(
            round(x(at), 1),
            day_text(at),
            "start" if at == first else ("end" if at + step * DAY_S > last else "middle"),
        )
        for at in (first + k * step * DAY_S for k in range(days // step + 1))
    )
    y_ticks = tuple(
        Tick(round(y(top_hours * 3600 * i / 4), 1), gpu_hours(top_hours * i / 4)) for i in range(5)
    )
    used = gpu_hours(round(series.used_gpu_seconds / 3600, 2))
    summary = (
        f"{used} GPU-hours used from {day_text(first)} to "
        f"{day_text(last - DAY_S)}, on {len(series.days)} "
        f"{'day' if len(series.days) == 1 else 'days'} with use; the table below gives each day."
    )
    return UsageChart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=right,
        top=TOP,
        bottom=bottom,
        path="".join(points),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        summary=summary,
    )
