"""Calltouch accounts: ``default`` (CALLTOUCH_SITE_ID / CALLTOUCH_TOKEN / CTQ_DAILY_POINTS) and
those of the TOML file CTQ_ACCOUNTS_FILE names::

    [accounts.shop-a]
    site_id = "1001"
    token_env = "SHOP_A_TOKEN"   # or token = "..."
    daily_points = 20000         # optional: CTQ_DAILY_POINTS otherwise
    weight = 2                   # optional: its share of the rate against the others (1)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

DEFAULT = "default"
# Names become parts of Redis keys and queue names: short, lower case, no separators.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_WEIGHT = 100
# A token travels in an HTTP header, which carries visible ASCII only: one with anything else
# (a pasted non-breaking space, a stray control character) would fail every request.
HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
TOKEN_PROBLEM = "has a character an HTTP header cannot carry (visible ASCII only; value not shown)"


@dataclass(frozen=True)
class Account:
    """One Calltouch account: its site, its token (a secret), its budget and share."""

    name: str
    site_id: str | None
    token: SecretStr | None
    daily_points: int | None
    weight: int = 1

    @property
    def site(self) -> str:
        """The site its points, breakers and status are kept under ("-" without one)."""
        return self.site_id or "-"


class AccountEntry(BaseModel):
    """One ``[accounts.NAME]`` table of the file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    site_id: str = Field(pattern=r"^[1-9][0-9]{0,18}$")
    token: SecretStr | None = None
    token_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    daily_points: int | None = Field(None, ge=1)
    weight: int = Field(1, ge=1, le=MAX_WEIGHT)

    @model_validator(mode="after")
    def _one_token(self) -> AccountEntry:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("set exactly one of token and token_env")
        return self


class AccountsFileError(ValueError):
    """The accounts file cannot be used; the message names the account and the reason."""


def load_accounts(
    path: Path | None,
    default: Account,
    environ: Mapping[str, str],
    default_points: int | None,
) -> dict[str, Account]:
    """``default`` and the accounts of the file at ``path`` (none without one), by name."""
    accounts = {DEFAULT: default}
    if path is None:
        return accounts
    tables = _read(path)
    for name, table in tables.items():
        accounts[name] = _account(name, table, environ, default_points)
    _refuse_shared_sites(accounts)
    return accounts


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountsFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AccountsFileError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"accounts"})
    if unknown:
        raise AccountsFileError(
            f"{path}: unknown table(s) {unknown}; accounts go in [accounts.NAME]"
        )
    tables = data.get("accounts", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise AccountsFileError(f"{path}: each account is a table, [accounts.NAME]")
    return tables


def _account(
    name: str, table: dict[str, Any], environ: Mapping[str, str], default_points: int | None
) -> Account:
    where = f"account {name!r}"
    if name == DEFAULT:
        raise AccountsFileError(
            f"{where}: 'default' is the account of CALLTOUCH_SITE_ID and CALLTOUCH_TOKEN; "
            "name the file's accounts otherwise"
        )
    if not NAME.match(name):
        raise AccountsFileError(
            f"{where}: a name is 1-40 of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    try:
        entry = AccountEntry.model_validate(table)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(map(str, first["loc"]))
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise AccountsFileError(f"{where}: {field + ': ' if field else ''}{reason}") from None
    if entry.token_env is not None:
        value = environ.get(entry.token_env, "").strip()
        if not value:
            raise AccountsFileError(f"{where}: token_env {entry.token_env} is not set")
    else:
        assert entry.token is not None  # _one_token
        value = entry.token.get_secret_value().strip()  # a pasted token often ends in a newline
        if not value:
            raise AccountsFileError(f"{where}: token is empty")
    if not HEADER_SAFE.fullmatch(value):
        raise AccountsFileError(f"{where}: the token {TOKEN_PROBLEM}")
    token = SecretStr(value)
    points = entry.daily_points if entry.daily_points is not None else default_points
    return Account(name, entry.site_id, token, points, entry.weight)


def _refuse_shared_sites(accounts: dict[str, Account]) -> None:
    """Points and breakers are kept per site: two accounts on one site would share them."""
    owners: dict[str, str] = {}
    for account in accounts.values():
        if account.site_id is None:
            continue
        other = owners.setdefault(account.site_id, account.name)
        if other != account.name:
            raise AccountsFileError(
                f"account {account.name!r}: site_id {account.site_id} is also account "
                f"{other!r}'s; each account is its own site"
            )
