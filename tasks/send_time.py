"""When a job may be sent: the ISO 8601 time ``ctq enqueue --at`` and ``?at=`` take."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

# Date and time in ASCII digits, seconds and fraction optional, an offset or none (then
# CTQ_TIMEZONE). Not a bare number: ``fromisoformat`` would read "20261123" as a date, and a
# unix time is a guess.
ISO_8601 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
EXAMPLE = "2026-11-23T10:00:00+03:00"


def checked_time(text: str) -> str:
    """``text`` if it is such a time; otherwise a ValueError that says what one looks like."""
    if not re.fullmatch(ISO_8601, text):
        raise ValueError(f"not an ISO 8601 time like {EXAMPLE}: {text!r}")
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:  # the shape is right, a value is not (month 13, hour 25)
        raise ValueError(f"not a valid time: {exc}") from None
    return text


def timestamp(text: str, tz: ZoneInfo) -> float:
    """The unix time of ``text``, read in ``tz`` when it names no offset."""
    when = datetime.fromisoformat(checked_time(text))
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()
