"""``?account=NAME``: which Calltouch account posted jobs, staged leads or a campaign are of."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from config import Settings
from config.accounts import NAME
from config.settings import UnknownAccount
from tasks.validation import JobValidationError, Problem

AccountName = Annotated[
    str | None,
    Query(
        pattern=NAME.pattern,
        description="the Calltouch account: a name of CTQ_ACCOUNTS_FILE (default: `default`, "
        "the account of CALLTOUCH_SITE_ID), like `--account` of the CLI",
    ),
]


def account_of(name: str | None, settings: Settings) -> str:
    """The account's name; an unknown one is refused like a bad line (422)."""
    try:
        return settings.account(name).name
    except UnknownAccount as exc:
        raise JobValidationError([Problem(0, "query.account", str(exc))]) from None
