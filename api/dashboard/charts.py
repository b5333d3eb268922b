"""Line charts drawn on the server as SVG coordinates, so the page needs no chart library."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

WIDTH, HEIGHT = 600, 120


@dataclass(frozen=True)
class Chart:
    """A polyline of values over ``slots`` positions (fewer values: the rest is the future),
    scaled so that ``top`` is the top edge; ``guide`` a second line (a limit, an ideal)."""

    points: str
    guide: str
    top: float
    width: int = WIDTH
    height: int = HEIGHT


def line_chart(
    values: Sequence[float],
    slots: int,
    guide: tuple[float, float] | None = None,
) -> Chart:
    """``guide`` is a straight line from its first value (left edge) to its second (right)."""
    top = float(max([*values, *(guide or ()), 1.0])) * 1.1
    step = WIDTH / max(1, slots - 1)

    def y(value: float) -> float:
        return round(HEIGHT - float(value) / top * HEIGHT, 1)

    points = " ".join(f"{round(i * step, 1)},{y(v)}" for i, v in enumerate(values))
    line = "" if guide is None else f"0,{y(guide[0])} {WIDTH},{y(guide[1])}"
    return Chart(points, line, top)


def per_second_rate(per_second: Sequence[int], every: int = 10) -> list[float]:
    """Requests per second averaged over each ``every`` seconds (a 5/s limiter's seconds are
    4s and 5s; their average is what to hold against the limit)."""
    return [sum(per_second[i : i + every]) / every for i in range(0, len(per_second), every)]


def burn_down(
    spent_at: dict[int, int], budget: int | None, now: float, tz: ZoneInfo, bucket: int
) -> Chart:
    """Today's points in ``bucket``-second steps from midnight: left of the budget, against
    an even spend over the day; without a budget, points used so far."""
    start = datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    first = int(start.timestamp())
    slots = math.ceil(86400 / bucket)
    per_slot = [0] * (min(slots - 1, int((now - first) // bucket)) + 1)
    for moment, points in spent_at.items():
        # A bucket may start before midnight in a timezone not a whole hour off UTC.
        per_slot[min(max(0, (moment - first) // bucket), len(per_slot) - 1)] += points
    values, total = [], 0
    for points in per_slot:
        total += points
        values.append(float(total if budget is None else budget - total))
    return line_chart(values, slots, None if budget is None else (budget, 0.0))
