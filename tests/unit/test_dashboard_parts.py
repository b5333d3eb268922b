"""The dashboard's session cookie and its charts, without a server."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from api.dashboard import session
from api.dashboard.charts import burn_down, line_chart, per_second_rate

KEYS = [b"first-key", b"second-key"]
NOW = 1_795_000_000.0


def test_a_session_proves_a_key_without_holding_it() -> None:
    cookie = session.issue("second-key", NOW)
    assert "second-key" not in cookie
    assert session.valid(cookie, KEYS, NOW + 60)


def test_a_session_ends_with_its_lifetime_or_its_key() -> None:
    cookie = session.issue("first-key", NOW)
    assert not session.valid(cookie, KEYS, NOW + session.LIFETIME + 1)
    assert not session.valid(cookie, [b"second-key"], NOW)  # the key was removed
    assert not session.valid(cookie, KEYS, NOW - 120)  # issued in the future


@pytest.mark.parametrize(
    "cookie",
    [None, "", "garbage", f"{int(NOW)}.", f"{int(NOW)}.{'0' * 64}", f"{int(NOW) + 1}.x"],
)
def test_anything_but_an_issued_session_is_refused(cookie: str | None) -> None:
    assert not session.valid(cookie, KEYS, NOW)


def request(headers: dict[str, str]) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("ctq.internal", 8080),
        "path": "/dashboard/resume",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope)


JSON = {"content-type": "application/json", "host": "ctq.internal:8080"}


def test_a_button_press_from_the_page_itself_is_accepted() -> None:
    session.check_same_origin(request({**JSON, "origin": "http://ctq.internal:8080"}))
    session.check_same_origin(request(JSON))  # no Origin: not a browser


@pytest.mark.parametrize(
    "headers",
    [
        {**JSON, "origin": "http://evil.example"},
        {**JSON, "referer": "https://ctq.internal:8080/"},  # another scheme
        {"content-type": "application/x-www-form-urlencoded", "host": "ctq.internal:8080"},
        {"content-type": "text/plain", "host": "ctq.internal:8080"},
    ],
    ids=["another origin", "another scheme", "a form post", "a no-cors text post"],
)
def test_a_cross_site_request_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(session.CrossSite):
        session.check_same_origin(request(headers))


def test_permits_are_averaged_per_10_seconds_against_the_limit() -> None:
    per_second = [5, 4] * 5 + [0] * 10
    assert per_second_rate(per_second) == [4.5, 0.0]
    chart = line_chart([4.5, 0.0], 2, (5.0, 5.0))
    assert chart.points == "0.0,21.8 600.0,120.0"
    assert chart.guide == "0,10.9 600,10.9"  # the limit, a tenth below the top


def test_the_burn_down_starts_at_the_budget_at_local_midnight() -> None:
    tz = ZoneInfo("Asia/Kathmandu")  # UTC+5:45: its midnight is not on a 10-minute bucket
    midnight = 1_795_000_000 - 1_795_000_000 % 86400 - (5 * 3600 + 45 * 60) + 86400
    spent = {midnight - 300: 10, midnight + 1200: 20}
    chart = burn_down(spent, 100, midnight + 1900, tz, 600)
    values = [float(p.split(",")[1]) for p in chart.points.split()]
    top = chart.top
    assert [round((chart.height - v) / chart.height * top) for v in values] == [90, 90, 70, 70]
    assert chart.guide.startswith("0,") and chart.guide.endswith(",120.0")  # budget → 0
