"""The throughput chart's geometry, computed here and drawn as inline SVG by the template.

Drawn on the server, the chart needs no script and refreshes with the page
region it sits in; each bar has a ``<title>``, the browser's own tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import attrs

from ._format import clock
from ._throughput import Bucket

__all__ = ["Chart", "throughput_chart"]

WIDTH: Final = 760
HEIGHT: Final = 200
_LEFT: Final = 44
_RIGHT: Final = 8
_TOP: Final = 12
_BOTTOM: Final = 26
_GAP: Final = 2.0
#: A label under the x axis every this many bars.
_X_LABEL_EVERY: Final = 12


@attrs.frozen
class Bar:
    x: float
    width: float
    #: the succeeded part (bottom) and the failed part (stacked on it)
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    sampled: bool
    title: str


@attrs.frozen
class Tick:
    at: float
    label: str


@attrs.frozen
class Chart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: Sequence[Bar]
    y_ticks: Sequence[Tick]
    x_ticks: Sequence[Tick]
    #: the first bar that was sampled (``None``: none yet)
    since_x: float | None


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (at least 4)."""
    value = max(value, 4)
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def throughput_chart(series: Sequence[Bucket]) -> Chart:
    """Stacked bars (succeeded, failed) of ``series``, oldest on the left."""
    plot_width = WIDTH - _LEFT - _RIGHT
    plot_height = HEIGHT - _TOP - _BOTTOM
    base = _TOP + plot_height
    top_value = _nice_ceiling(max((b.finished for b in series), default=0))
    step = plot_width / max(len(series), 1)
    bars = []
    since_x = None
    for i, bucket in enumerate(series):
        x = _LEFT + i * step
        ok = plot_height * bucket.succeeded / top_value
        failed = plot_height * bucket.failed / top_value
        if bucket.sampled and since_x is None:
            since_x = x
        title = f"{clock(bucket.start)}\u2013{clock(bucket.start + bucket.seconds)}: " + (
            f"{bucket.succeeded} succeeded, {bucket.failed} failed"
            if bucket.sampled
            else "not sampled (the dashboard was not running)"
        )
        bars.append(
            Bar(
                x=round(x + _GAP / 2, 2),
                width=round(max(step - _GAP, 1.0), 2),
                ok_y=round(base - ok, 2),
                ok_height=round(ok, 2),
                failed_y=round(base - ok - failed, 2),
                failed_height=round(failed, 2),
                sampled=bucket.sampled,
                title=title,
            )
        )
    y_ticks = [
        Tick(round(base - plot_height * value / top_value, 2), str(value))
        for value in (0, top_value // 2, top_value)
    ]
    x_ticks = []
    count = len(series)
    for i in range(0, count + 1, _X_LABEL_EVERY):
        seconds_back = (count - i) * (series[0].seconds if series else 0)
        label = "now" if i == count else f"-{round(seconds_back / 60)}m"
        x_ticks.append(Tick(round(_LEFT + i * step, 2), label))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=_LEFT,
        right=WIDTH - _RIGHT,
        top=_TOP,
        bottom=base,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        since_x=since_x,
    )
