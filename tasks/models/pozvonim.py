"""Pozvonim callback: ``POST /sites/{id}/call``, or ``/sites/{id}/call/delayed`` with a time."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from tasks.models.common import ApiModel, Count, Id, NonEmpty

_PHONE = re.compile(r"\+?\d{10,15}")


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise PydanticCustomError(
            "phone_format",
            "must be 10 to 15 digits, optionally after +, got {value}",
            {"value": repr(value)},
        )
    return value


def _iso8601(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "iso8601", "must be an ISO 8601 date and time, e.g. 2026-11-23T10:00:00+03:00"
        ) from None
    return value


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise PydanticCustomError("ip", "must be an IPv4 or IPv6 address") from None
    return value


class PozvonimCallJob(ApiModel):
    """Start a Pozvonim call to ``phone`` now, or at ``delayed``."""

    provider: Literal["pozvonim"]
    site_id: Id
    phone: Annotated[str, AfterValidator(_phone)]
    delayed: Annotated[str, AfterValidator(_iso8601)] | None = None
    region: Id | NonEmpty | None = None
    source_call: NonEmpty | None = None
    source_enter: NonEmpty | None = None
    source_referer: NonEmpty | None = None
    return_count: Count | None = None
    ip: Annotated[str, AfterValidator(_ip)] | None = None
    useragent: NonEmpty | None = None
