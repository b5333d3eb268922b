"""The one settings class. Names are a contract (see README, "Configuration")."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import limits
from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.accounts import (
    DEFAULT,
    HEADER_SAFE,
    TOKEN_PROBLEM,
    Account,
    AccountsFileError,
    load_accounts,
)
from config.zones import zone
from worker.errors import InvalidInput
from worker.redaction import remember_secrets


class UnknownAccount(InvalidInput):
    """A job named an account that is neither ``default`` nor in CTQ_ACCOUNTS_FILE."""


class Settings(BaseSettings):
    """ctq's configuration, read from the environment and an optional ``.env`` file.

    Built once at start-up and passed in; library code never reads the environment itself.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    allow_eviction: bool = Field(False, validation_alias="CTQ_ALLOW_EVICTION")
    sentinel_master: str = Field("mymaster", validation_alias="CTQ_SENTINEL_MASTER")
    data_dir: Path = Field(Path(".ctq"), validation_alias="CTQ_DATA_DIR")

    calltouch_api_url: str = Field("https://api.calltouch.ru", validation_alias="CALLTOUCH_API_URL")
    calltouch_site_id: str | None = Field(None, validation_alias="CALLTOUCH_SITE_ID")
    calltouch_token: SecretStr | None = Field(None, validation_alias="CALLTOUCH_TOKEN")
    accounts_file: Path | None = Field(None, validation_alias="CTQ_ACCOUNTS_FILE")

    pozvonim_api_url: str = Field(
        "https://api.pozvonim.com/v2u", validation_alias="POZVONIM_API_URL"
    )
    pozvonim_uid: str | None = Field(None, validation_alias="POZVONIM_UID")
    pozvonim_api_key: SecretStr | None = Field(None, validation_alias="POZVONIM_API_KEY")

    pozvonim_rate_limit: str = Field("5/second", validation_alias="POZVONIM_RATE_LIMIT")
    rate_limit: str = Field("5/second", validation_alias="CTQ_RATE_LIMIT")
    egress_ip: str = Field("default", validation_alias="CTQ_EGRESS_IP")
    daily_points: int | None = Field(None, ge=1, validation_alias="CTQ_DAILY_POINTS")
    timezone: str = Field("Europe/Moscow", validation_alias="CTQ_TIMEZONE")
    limiter_margin_ms: float = Field(25.0, ge=0, validation_alias="CTQ_LIMITER_MARGIN_MS")
    limiter_margin_max_ms: float = Field(300.0, ge=0, validation_alias="CTQ_LIMITER_MARGIN_MAX_MS")
    # After a realtime permit, bulk leaves one permit of every window free for this long.
    limiter_realtime_reserve_s: float = Field(
        5.0, ge=0, le=3600, validation_alias="CTQ_LIMITER_REALTIME_RESERVE_S"
    )
    points_reserve: float = Field(0.1, ge=0, le=1, validation_alias="CTQ_POINTS_RESERVE")
    point_costs: dict[str, int] = Field(
        {"comment": 1, "callback": 1, "pool-update": 1}, validation_alias="CTQ_POINT_COSTS"
    )
    points_exhausted_codes: frozenset[int] = Field(
        frozenset(), validation_alias="CTQ_POINTS_EXHAUSTED_CODES"
    )
    unknown_code_pause_after: int = Field(3, ge=1, validation_alias="CTQ_UNKNOWN_CODE_PAUSE_AFTER")

    connect_timeout: float = Field(3.05, gt=0, validation_alias="CTQ_CONNECT_TIMEOUT")
    read_timeout: float = Field(30.0, gt=0, validation_alias="CTQ_READ_TIMEOUT")
    max_attempts: int = Field(8, ge=1, validation_alias="CTQ_MAX_ATTEMPTS")
    backoff_base: float = Field(1.0, gt=0, validation_alias="CTQ_BACKOFF_BASE")
    backoff_max: float = Field(300.0, gt=0, validation_alias="CTQ_BACKOFF_MAX")
    inprocess_wait_max: float = Field(10.0, ge=0, validation_alias="CTQ_INPROCESS_WAIT_MAX")
    long_retry_delay: float = Field(3600.0, gt=0, validation_alias="CTQ_LONG_RETRY_DELAY")
    visibility_timeout: int = Field(300, ge=10, validation_alias="CTQ_VISIBILITY_TIMEOUT")
    lease_seconds: float = Field(6.0, ge=2, validation_alias="CTQ_LEASE_SECONDS")
    lost_message_after: float = Field(30.0, ge=3, validation_alias="CTQ_LOST_MESSAGE_AFTER")
    idempotency_window: int = Field(3600, ge=1, validation_alias="CTQ_IDEMPOTENCY_WINDOW")
    breaker_probe_interval: float = Field(
        300.0, gt=0, validation_alias="CTQ_BREAKER_PROBE_INTERVAL"
    )
    nightly_at: str = Field(
        "02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", validation_alias="CTQ_NIGHTLY_AT"
    )
    campaign_phone_interval: float = Field(
        600.0, ge=1, validation_alias="CTQ_CAMPAIGN_PHONE_INTERVAL"
    )
    dlq_retention_days: int = Field(14, ge=1, validation_alias="CTQ_DLQ_RETENTION_DAYS")
    job_retention_days: int = Field(7, ge=1, validation_alias="CTQ_JOB_RETENTION_DAYS")
    sandbox_token: SecretStr = Field(
        SecretStr("sandbox-token"), validation_alias="CTQ_SANDBOX_TOKEN"
    )
    worker_concurrency: int = Field(4, ge=1, validation_alias="CTQ_WORKER_CONCURRENCY")
    max_line_bytes: int = Field(65536, ge=1024, validation_alias="CTQ_MAX_LINE_BYTES")
    # Comma-separated; a secret like the tokens: never logged, never echoed.
    api_keys: SecretStr | None = Field(None, validation_alias="CTQ_API_KEYS")
    api_max_body_bytes: int = Field(8 * 2**20, ge=1024, validation_alias="CTQ_API_MAX_BODY_BYTES")
    # Processes serving the API: each is one Python interpreter, so one core at most.
    api_workers: int = Field(1, ge=1, le=64, validation_alias="CTQ_API_WORKERS")
    # Log lines as text for people, or one JSON object a line for log shippers.
    log_format: Literal["text", "json"] = Field("text", validation_alias="CTQ_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias="CTQ_LOG_LEVEL"
    )
    # Flower's logins, "user:password[,user:password]": a secret, like the API keys.
    flower_basic_auth: SecretStr | None = Field(None, validation_alias="FLOWER_BASIC_AUTH")

    @field_validator(
        "calltouch_token",
        "pozvonim_api_key",
        "sandbox_token",
        "api_keys",
        "flower_basic_auth",
        mode="before",
    )
    @classmethod
    def _secret_without_blanks(cls, value: Any) -> Any:
        # A secret read from a file often ends in a newline; sent as is, it fails every request
        # (and the HTTP library's error quotes it).
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("calltouch_token")
    @classmethod
    def _token_fits_a_header(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not HEADER_SAFE.fullmatch(value.get_secret_value()):
            raise ValueError(TOKEN_PROBLEM)
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_in_any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit", "pozvonim_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate in `limits` notation, e.g. 5/second: {exc}") from None
        return value

    @field_validator("point_costs")
    @classmethod
    def _costs_of_known_methods(cls, value: dict[str, int]) -> dict[str, int]:
        known = {"comment", "callback", "pool-update"}
        if unknown := set(value) - known:
            raise ValueError(f"unknown job kinds {sorted(unknown)}; known: {sorted(known)}")
        if any(cost < 0 for cost in value.values()):
            raise ValueError("costs must not be negative")
        return {**dict.fromkeys(known, 1), **value}

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("calltouch_api_url", "pozvonim_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _timeouts_fit_the_visibility_timeout(self) -> Settings:
        # A job holds its message for in-process waits (up to half the visibility timeout),
        # then one more permit wait and request, then recording the answer through a Redis
        # outage (a quarter). If the request does not fit in the last quarter, the broker
        # redelivers the message while the first copy may still be sending it.
        request = self.connect_timeout + self.read_timeout + self.inprocess_wait_max
        if request > self.visibility_timeout / 4:
            raise ValueError(
                f"CTQ_VISIBILITY_TIMEOUT ({self.visibility_timeout} s) must be at least 4 x "
                f"(CTQ_CONNECT_TIMEOUT + CTQ_READ_TIMEOUT + CTQ_INPROCESS_WAIT_MAX) = "
                f"{4 * request:g} s, or a job still sending could be redelivered and sent twice"
            )
        return self

    _accounts: dict[str, Account] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _accounts_load(self) -> Settings:
        default = Account(DEFAULT, self.calltouch_site_id, self.calltouch_token, self.daily_points)
        try:
            self._accounts = load_accounts(
                self.accounts_file, default, os.environ, self.daily_points
            )
        except AccountsFileError as exc:
            raise ValueError(f"CTQ_ACCOUNTS_FILE: {exc}") from None
        remember_secrets(self.secret_values())
        return self

    def secret_values(self) -> list[str]:
        """Every secret this configuration holds: text that quotes one gets it blanked out."""
        secrets = [
            secret.get_secret_value()
            for secret in (
                self.calltouch_token,
                self.pozvonim_api_key,
                self.sandbox_token,
                self.flower_basic_auth,
            )
            if secret is not None
        ]
        secrets += self.api_key_list
        if self.flower_basic_auth is not None:
            logins = self.flower_basic_auth.get_secret_value().split(",")
            secrets += [login.partition(":")[2] for login in logins]
        secrets += [a.token.get_secret_value() for a in self._accounts.values() if a.token]
        if self.redis_url and (password := urlsplit(self.redis_url).password):
            secrets.append(password)
        return secrets

    @property
    def accounts(self) -> dict[str, Account]:
        """Every account by name: ``default`` first, then the file's in its order."""
        return self._accounts

    def account(self, name: str | None) -> Account:
        """The account named ``name`` (``default`` for None); unknown names are refused."""
        found = self._accounts.get(name or DEFAULT)
        if found is None:
            known = ", ".join(self._accounts)
            raise UnknownAccount(f"unknown account {name!r}; known: {known} (CTQ_ACCOUNTS_FILE)")
        return found

    @property
    def api_key_list(self) -> list[str]:
        """The keys of CTQ_API_KEYS (blanks around and between commas ignored)."""
        if self.api_keys is None:
            return []
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def rate(self) -> limits.RateLimitItem:
        return limits.parse(self.rate_limit)


# Variables ctq reads that are not settings: CTQ_DEBUG shows a traceback instead of one line.
NOT_SETTINGS = frozenset({"CTQ_DEBUG"})


def configuration_problems(environ: Mapping[str, str]) -> list[str]:
    """A ``CTQ_`` variable that is no setting is a typo that would be silently ignored (a
    misspelled CTQ_DAILY_POINTS sends without a budget): name it, with the likely intent."""
    known = {str(field.validation_alias) for field in Settings.model_fields.values()}
    known |= NOT_SETTINGS
    problems = []
    for name in sorted(environ):
        if name.startswith("CTQ_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a ctq setting{hint}; see README, Configuration")
    return problems
