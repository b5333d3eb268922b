"""Call windows on a fixed clock: crossing midnight, in two timezones, on chosen days."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler.windows import CallWindow, parse_days

UTC = ZoneInfo("UTC")


def at(text: str, tz: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def test_a_day_window_is_open_only_inside_on_its_days() -> None:
    window = CallWindow.parse("09:00-20:00", "mon-fri", "Europe/Moscow")
    assert window.is_open(at("2026-11-23 09:00", "Europe/Moscow"))  # Monday
    assert not window.is_open(at("2026-11-23 08:59", "Europe/Moscow"))
    assert not window.is_open(at("2026-11-23 20:00", "Europe/Moscow"))
    assert not window.is_open(at("2026-11-22 12:00", "Europe/Moscow"))  # Sunday


@pytest.mark.parametrize("tz", ["Europe/Moscow", "Asia/Vladivostok"])
def test_a_window_crossing_midnight_belongs_to_the_day_it_opens(tz: str) -> None:
    window = CallWindow.parse("21:00-02:00", "fri", tz)
    assert window.is_open(at("2026-11-27 21:00", tz))  # Friday evening
    assert window.is_open(at("2026-11-28 01:59", tz))  # Saturday, still Friday's window
    assert not window.is_open(at("2026-11-28 02:00", tz))
    assert not window.is_open(at("2026-11-28 21:30", tz))  # Saturday's own evening: closed
    assert not window.is_open(at("2026-11-27 01:00", tz))  # Thursday's window: closed


def test_00_00_to_24_00_is_all_day_and_24_00_ends_a_window_at_midnight() -> None:
    all_day = CallWindow.parse("00:00-24:00", "mon", "Europe/Moscow")
    assert all_day.is_open(at("2026-11-23 00:00", "Europe/Moscow"))
    assert all_day.is_open(at("2026-11-23 23:59:59", "Europe/Moscow"))
    assert not all_day.is_open(at("2026-11-24 00:00", "Europe/Moscow"))  # Tuesday
    evening = CallWindow.parse("18:00-24:00", "mon", "Europe/Moscow")
    assert evening.is_open(at("2026-11-23 23:59", "Europe/Moscow"))
    assert not evening.is_open(at("2026-11-23 17:59", "Europe/Moscow"))


def test_the_same_instant_is_open_in_one_timezone_and_closed_in_another() -> None:
    instant = datetime(2026, 11, 27, 14, 30, tzinfo=UTC)  # 17:30 Moscow, 00:30 Vladivostok
    moscow = CallWindow.parse("21:00-02:00", "thu-fri", "Europe/Moscow")
    vladivostok = CallWindow.parse("21:00-02:00", "thu-fri", "Asia/Vladivostok")
    assert not moscow.is_open(instant)
    assert vladivostok.is_open(instant)  # Friday 00:30 there, inside Thursday's window


def test_minutes_until_the_window_opens() -> None:
    window = CallWindow.parse("09:00-20:00", "mon-fri", "Europe/Moscow")
    assert window.open_minutes(at("2026-11-23 08:30", "Europe/Moscow")) == 30
    assert window.open_minutes(at("2026-11-21 09:00", "Europe/Moscow")) == 2 * 24 * 60  # Sat


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("daily", set(range(7))),
    ],
)
def test_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("window", "days"), [("9-20", "mon-fri"), ("09:00-09:00", "mon"), ("09:00-20:00", "weekdays")]
)
def test_bad_windows_and_days_are_refused(window: str, days: str) -> None:
    with pytest.raises(ValueError):
        CallWindow.parse(window, days, "Europe/Moscow")


@pytest.mark.parametrize("tz", ["Mars/Base", "../etc/passwd", "Europe", "x" * 300, ""])
def test_an_unknown_time_zone_is_refused_by_name(tz: str) -> None:
    with pytest.raises(ValueError) as refused:
        CallWindow.parse("09:00-20:00", "mon-fri", tz)
    assert str(refused.value) == f"unknown time zone {tz!r}, e.g. Europe/Moscow"
