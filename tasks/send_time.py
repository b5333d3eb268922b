"""When a job may be sent: the ISO 8601 time ``ctq enqueue --at`` and ``?at=`` take."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

# Date and time, seconds and fraction optional, an offset or none (then CTQ_TIMEZONE). Not a
# bare number: ``fromisoformat`` would read "20261123" as a date, and a unix time is a guess.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$"
EXAMPLE = "2026-11-23T10:00:00+03:00"


def checked_time(text: str) -> str:
    """``text`` if it is such a time; otherwise a ValueError that says what one looks like."""
    if not re.fullmatch(ISO_8601, text):
        raise ValueError(f"not an ISO 8601 time like {EXAMPLE}: {text!r}")
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:  # the shape is right, a value is not (month 13, hour 25)
        raise ValueError(f"not a valid time: {exc}: {text!r}") from None
    return text


def timestamp(text: str, tz: ZoneInfo) -> float:
    """The unix time of ``text``, read in ``tz`` when it names no offset."""
    when = datetime.fromisoformat(checked_time(text))
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()
