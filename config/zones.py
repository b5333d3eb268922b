"""Time zones by IANA name, refused with one reason whatever the name is."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; a ValueError naming it when there is none. A name may also
    be a directory of the zone database ("Europe") or too long for a file name: OSError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}, e.g. Europe/Moscow") from None
