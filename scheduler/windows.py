"""Call windows: when a campaign may call, in its own timezone. A window may cross midnight
(``21:00-02:00``): the hours after midnight belong to the day the window opened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from config.zones import zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# "24:00", the midnight that ends a day: every time of day is before it.
END_OF_DAY = time.max


@dataclass(frozen=True)
class CallWindow:
    """Daily ``start``–``end`` on ``days`` (weekday numbers, Monday 0) in ``tz``."""

    start: time
    end: time
    days: frozenset[int]
    tz: ZoneInfo

    @classmethod
    def parse(cls, window: str, days: str, tz: str) -> CallWindow:
        """``09:00-20:00`` (``24:00`` ends at midnight: ``00:00-24:00`` is all day), ``mon-fri``
        or ``mon,wed,sat`` or ``daily``, an IANA zone name."""
        try:
            first, last = (part.strip() for part in window.split("-"))
            start = time.fromisoformat(first)
            end = END_OF_DAY if last in ("24:00", "24:00:00") else time.fromisoformat(last)
        except ValueError:
            raise ValueError(f"window must be HH:MM-HH:MM, got {window!r}") from None
        if start == end:
            raise ValueError("window must not be empty (start equals end; all day: 00:00-24:00)")
        return cls(start, end, parse_days(days), zone(tz))

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        now = local.time()
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        if now >= self.start:  # evening part of a window crossing midnight
            return local.weekday() in self.days
        if now < self.end:  # after midnight: the window opened the day before
            return (local.weekday() - 1) % 7 in self.days
        return False

    def open_minutes(self, moment: datetime, limit: int = 60 * 24 * 31) -> int:
        """Minutes from ``moment`` until the window is next open (0 if open now)."""
        for minute in range(limit):
            if self.is_open(moment + timedelta(minutes=minute)):
                return minute
        raise ValueError("the window never opens")


def parse_days(text: str) -> frozenset[int]:
    text = text.strip().lower()
    if text in ("daily", "all", "mon-sun"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"days must be like mon-fri or mon,wed,sat, got {text!r}")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)
