"""Every kind of answer maps to the outcome the policy table promises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from config.policy import Outcome, render_markdown
from worker.outcome import classify


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = (
        raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    )
    answer.headers.update(headers or {})
    answer.reason = "Reason"
    return answer


def api_error(code: int, message: str = "text") -> dict[str, Any]:
    return {"meta": [], "data": {"apiErrorData": {"errorCode": code, "errorMessage": message}}}


VALIDATION = {
    "meta": [],
    "data": {
        "type": "validationError",
        "apiErrorData": None,
        "validationErrorData": {
            "violations": [
                {
                    "fieldPath": "comments[0].addComment",
                    "message": "This value should not be blank.",
                }
            ]
        },
    },
}


@pytest.mark.parametrize(
    ("answer", "outcome", "key"),
    [
        (response(200, {"data": {"widgetRequestId": 1}}), Outcome.DONE, "http_2xx"),
        (response(200), Outcome.DONE, "http_2xx"),
        (response(429), Outcome.RETRY, "http_429"),
        (response(500), Outcome.RETRY, "http_5xx"),
        (response(502, raw=b"<html>bad gateway</html>"), Outcome.RETRY, "http_5xx"),
        (response(503), Outcome.RETRY, "http_5xx"),
        (requests.ConnectTimeout("connect"), Outcome.RETRY, "timeout"),
        (requests.ReadTimeout("read"), Outcome.RETRY, "timeout"),
        (requests.ConnectionError("refused"), Outcome.RETRY, "connection"),
        (response(400, api_error(10007)), Outcome.RETRY, "api_10007"),
        (response(400, api_error(10005)), Outcome.RETRY, "api_10005"),
        (response(400, api_error(10006)), Outcome.RETRY, "api_10006"),
        (response(401), Outcome.PAUSE, "http_401"),
        (response(403, {"message": "Invalid credentials"}), Outcome.PAUSE, "http_403"),
        (response(400, api_error(10001)), Outcome.PAUSE, "api_10001"),
        (response(400, api_error(10002)), Outcome.PAUSE, "api_10002"),
        (response(400, VALIDATION), Outcome.DEAD, "validation"),
        (response(400, api_error(1)), Outcome.DEAD, "api_1"),
        (response(400, api_error(10003)), Outcome.DEAD, "api_10003"),
        (response(400, api_error(10004)), Outcome.DEAD, "api_10004"),
        (response(400, api_error(10013)), Outcome.DEAD, "api_10013"),
        (response(400, api_error(99999)), Outcome.RETRY, "api_other"),
        (response(200, api_error(99999)), Outcome.RETRY, "api_other"),
        (response(403, api_error(403, "Forbidden")), Outcome.PAUSE, "http_403"),
        (response(401, api_error(10003)), Outcome.PAUSE, "http_401"),
        (response(403, VALIDATION), Outcome.PAUSE, "http_403"),
        (response(429, api_error(10007)), Outcome.RETRY, "http_429"),
        (response(402, api_error(99999)), Outcome.PAUSE, "http_402"),
        (response(402), Outcome.PAUSE, "http_402"),
        (response(503, api_error(99999)), Outcome.RETRY, "http_5xx"),
        (response(404), Outcome.DEAD, "http_4xx"),
        (response(422, {"message": "no"}), Outcome.DEAD, "http_4xx"),
        (response(302), Outcome.DEAD, "http_other"),
    ],
)
def test_answer_maps_to_policy_outcome(answer: Any, outcome: Outcome, key: str) -> None:
    verdict = classify(answer)
    assert (verdict.outcome, verdict.key) == (outcome, key)


def test_api_code_wins_over_a_2xx_status() -> None:
    assert classify(response(200, api_error(10003))).outcome is Outcome.DEAD


def test_no_status_or_unknown_code_dead_letters_a_bad_token_or_a_spent_balance() -> None:
    for status in (401, 402, 403):
        for body in (None, api_error(status), api_error(77777), {"message": "x"}):
            assert classify(response(status, body)).outcome is Outcome.PAUSE, (status, body)


def test_a_configured_points_code_wins_even_over_403() -> None:
    verdict = classify(response(403, api_error(10099)), frozenset({10099}))
    assert verdict.key == "points_spent"


def test_code_and_message_are_taken_from_the_error_body() -> None:
    verdict = classify(response(400, api_error(10003, "No widget")))
    assert (verdict.code, verdict.http_status, verdict.message) == (10003, 400, "No widget")
    assert classify(response(400, VALIDATION)).message == (
        "comments[0].addComment: This value should not be blank."
    )
    assert (
        classify(response(403, {"message": "Invalid credentials"})).message == "Invalid credentials"
    )
    assert classify(response(400, {"data": {"message": "inner"}})).message == "inner"


def test_retry_after_header_is_read_when_present() -> None:
    assert classify(response(429, headers={"Retry-After": "2"})).retry_after == 2.0
    assert classify(response(429)).retry_after is None


def test_readme_prints_the_policy_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert render_markdown() in readme
