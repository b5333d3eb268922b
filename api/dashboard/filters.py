"""Jinja filters: durations, times of day, and the ``/v1/status`` path of a shown number."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from jinja2 import Environment


def duration(seconds: float | None) -> str:
    """``0.4 s``, ``12 s``, ``3 min``, ``2.5 h``; an em dash for nothing."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def ago(moment: float | None) -> str:
    return "never" if not moment else f"{duration(max(0.0, time.time() - moment))} ago"


def clock(moment: float | None) -> str:
    """A unix time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if not moment:
        return "—"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) into ``GET /v1/status``'s answer: the browser test checks
    each number tagged with one against that answer."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped)


def install(env: Environment) -> None:
    env.filters.update(duration=duration, ago=ago, clock=clock)
    env.globals["pointer"] = pointer
