"""How refusals read, and how settings are read from the environment."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config import Settings
from tasks import send_time
from tasks.models import CallbackJob
from tasks.validation import JobValidationError, field_path, parse_json_lines, validate_all


def test_field_paths_read_like_the_api_writes_them() -> None:
    assert field_path(("comments", 0, "matching", 3, "callParams", "callId")) == (
        "comments[0].matching[3].callParams.callId"
    )
    assert field_path(()) == "(body)"


def test_every_problem_of_every_line_is_reported_with_its_line_number() -> None:
    items = parse_json_lines(
        '{"routeKey": "k", "phone": "79991234567"}\n\n'
        '{"routeKey": "", "phone": "1"}\n{"phone": "79991234567"}\n'
    )
    with pytest.raises(JobValidationError) as caught:
        validate_all(CallbackJob, items)
    assert [str(p) for p in caught.value.problems] == [
        "line 3: routeKey: String should have at least 1 character",
        "line 3: phone: must be 11 digits 7xxxxxxxxxx, e.g. 79991234567, got '1'",
        "line 4: routeKey: Field required",
    ]


def test_bad_json_and_empty_input_are_refused_by_line() -> None:
    with pytest.raises(JobValidationError) as caught:
        parse_json_lines('{"a": 1}\n{"a": \n')
    assert str(caught.value).startswith("line 2: (json): not valid JSON")
    with pytest.raises(JobValidationError, match="empty"):
        parse_json_lines("\n  \n")


def test_settings_use_the_documented_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/1")
    monkeypatch.setenv("CALLTOUCH_TOKEN", "secret-value")
    monkeypatch.setenv("CTQ_RATE_LIMIT", "4/second")
    monkeypatch.setenv("CTQ_DAILY_POINTS", "1000")
    settings = Settings(_env_file=None)
    assert settings.redis_url == "redis://example:6379/1"
    assert settings.rate.amount == 4
    assert settings.daily_points == 1000
    assert "secret-value" not in repr(settings) and "secret-value" not in str(settings.model_dump())


def test_defaults() -> None:
    settings = Settings(_env_file=None)
    assert (settings.rate_limit, settings.egress_ip, settings.timezone) == (
        "5/second",
        "default",
        "Europe/Moscow",
    )
    assert settings.calltouch_api_url == "https://api.calltouch.ru"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("CTQ_RATE_LIMIT", "fast", "limits"),
        ("CTQ_TIMEZONE", "Mars/Olympus", "time zone"),
        ("CTQ_TIMEZONE", "Europe", "unknown time zone .Europe."),
        ("CTQ_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=reason):
        Settings(_env_file=None)


def test_a_visibility_timeout_shorter_than_a_request_can_take_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, CTQ_VISIBILITY_TIMEOUT=15, CTQ_READ_TIMEOUT=30)
    assert "CTQ_VISIBILITY_TIMEOUT (15 s) must be at least 4 x (CTQ_CONNECT_TIMEOUT + " in str(
        caught.value
    )
    Settings(_env_file=None, CTQ_VISIBILITY_TIMEOUT=200, CTQ_READ_TIMEOUT=30)  # 4 x 43.05 fits


def test_json_lines_split_on_newlines_only_not_on_unicode_line_separators() -> None:
    text = '{"a": "one\u2028two\u0085three"}\n{"b": 2}\r\n'
    assert parse_json_lines(text) == [(1, {"a": "one\u2028two\u0085three"}), (2, {"b": 2})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tomorrow", "not an ISO 8601 time like 2026-11-23T10:00:00+03:00: 'tomorrow'"),
        ("20261123", "not an ISO 8601 time like 2026-11-23T10:00:00+03:00: '20261123'"),
        ("2026-11-23", "not an ISO 8601 time like 2026-11-23T10:00:00+03:00: '2026-11-23'"),
        ("2026-13-01T10:00", "not a valid time: month must be in 1..12"),
    ],
)
def test_a_send_time_that_is_not_one_says_what_one_looks_like(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as refused:
        send_time.timestamp(text, ZoneInfo("Europe/Moscow"))
    assert str(refused.value) == reason


def test_a_send_time_without_an_offset_is_read_in_the_configured_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    assert send_time.timestamp("2030-01-01T09:00", moscow) == 1893477600.0
    assert send_time.timestamp("2030-01-01 06:00:00Z", moscow) == 1893477600.0
