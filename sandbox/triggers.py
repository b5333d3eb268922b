"""Reserved phone numbers that make the sandbox answer with a given error.

Used as the callback ``phone`` or the pool update ``phoneNumber``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trigger:
    status: int
    code: int | None
    message: str


API_ERRORS = {
    1: "JSON syntax error or empty request",
    10001: "Not enough callback minutes",
    10002: "Callback service is not enabled",
    10003: "No enabled widget with this routeKey",
    10004: "Session not found",
    10005: "Request limit within the session exceeded",
    10006: "Request limit for this phone number exceeded",
    10007: "Minimum interval between requests for this phone number not yet passed",
    10013: "Invalid phone number",
}

TRIGGERS: dict[str, Trigger] = {
    **{f"7999{code:07d}": Trigger(400, code, text) for code, text in API_ERRORS.items()},
    "79990000401": Trigger(401, None, "Unauthorized"),
    "79990000403": Trigger(403, None, "Invalid credentials"),
    "79990000500": Trigger(500, None, "Internal Server Error"),
    "79990000502": Trigger(502, None, "Bad Gateway"),
    "79990000503": Trigger(503, None, "Service Unavailable"),
}

NO_LEAD_MARKER = "[no-lead]"


def help_text() -> str:
    rows = [
        f"  {phone}  HTTP {t.status}"
        + (f", code {t.code}" if t.code is not None else "")
        + f": {t.message}"
        for phone, t in TRIGGERS.items()
    ]
    return (
        "Reserved phones (callback `phone`, pool update `phoneNumber`):\n"
        + "\n".join(rows)
        + f"\nA comment lead whose addComment contains {NO_LEAD_MARKER} is answered "
        "commented=false, error 'Lead not found'."
    )
