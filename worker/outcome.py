"""The one function that turns any answer of the API (or the lack of one) into an outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import requests

from config.policy import POLICY, Outcome, Rule
from worker.redaction import redact_text


class TokenMissing(requests.RequestException):
    """Pozvonim answered its token request with success but no token: nothing was sent."""


@dataclass(frozen=True)
class LastOutcome:
    """A job's last outcome, as stored on its record (``last``) and in dead letters: an
    answer of the API, or a step without one (held, parked, cancelled)."""

    outcome: str
    reason: str
    http_status: int | None = None
    code: int | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """What one request came to: the policy rule that applies, and what the API said."""

    key: str
    http_status: int | None = None
    code: int | None = None
    message: str = ""
    body: Any = None
    retry_after: float | None = None
    # Send to answer, seconds (None without an answer): the limiter learns its margin from it.
    round_trip: float | None = None

    @property
    def rule(self) -> Rule:
        return POLICY[self.key]

    @property
    def outcome(self) -> Outcome:
        return self.rule.outcome

    def describe(self) -> LastOutcome:
        """The verdict as stored on the job and in dead letters."""
        return LastOutcome(str(self.outcome), self.key, self.http_status, self.code, self.message)


def classify(
    answer: requests.Response | requests.RequestException,
    points_spent_codes: frozenset[int] = frozenset(),
    success_statuses: frozenset[int] | None = None,
) -> Verdict:
    """Map a response, or the transport error raised instead of one, to a ``Verdict``.

    ``points_spent_codes`` are the API codes that mean the day's points are spent (the
    documents do not name one; see CTQ_POINTS_EXHAUSTED_CODES). ``success_statuses``, when
    given, are the only statuses that count as success (Pozvonim: 200, 201, 202, 204).
    """
    if isinstance(answer, requests.Timeout):
        return Verdict("timeout", message=_exception_message(answer))
    if isinstance(answer, TokenMissing):
        return Verdict("token_missing", message=str(answer))
    if isinstance(answer, requests.RequestException):
        return Verdict("connection", message=_exception_message(answer))
    body = _json_or_none(answer)
    status = answer.status_code
    code = _api_code(body)
    message = redact_text(_api_message(body) or answer.reason or "")  # it may quote a token
    common = {
        "http_status": status,
        "code": code,
        "message": message,
        "body": body,
        "round_trip": answer.elapsed.total_seconds() if answer.elapsed else None,
    }
    if code is not None and code in points_spent_codes:
        return Verdict("points_spent", **common)
    if status in (401, 403, 429):  # account or IP level, whatever the body says
        return Verdict(f"http_{status}", retry_after=_retry_after(answer), **common)
    if _is_validation_error(body):
        return Verdict("validation", **common)
    key = _status_key(status)
    if code is not None and f"api_{code}" in POLICY:
        key = f"api_{code}"
    elif code is not None and key not in ("http_5xx", "http_402"):
        key = "api_other"
    elif key == "http_2xx" and success_statuses is not None and status not in success_statuses:
        key = "http_other"
    return Verdict(key, retry_after=_retry_after(answer), **common)


def _status_key(status: int) -> str:
    if 200 <= status < 300:
        return "http_2xx"
    if status in (401, 402, 403, 429):
        return f"http_{status}"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    return "http_other"


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _api_code(body: Any) -> int | None:
    error = _data(body).get("apiErrorData")
    if isinstance(error, dict) and error.get("errorCode") is not None:
        try:
            return int(error["errorCode"])
        except (TypeError, ValueError):
            return None
    return None


def _is_validation_error(body: Any) -> bool:
    return _data(body).get("type") == "validationError"


def _api_message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):  # Pozvonim's error shape
        return f"{error.get('code')}: {error['message']}"
    data = _data(body)
    error = data.get("apiErrorData")
    if isinstance(error, dict) and error.get("errorMessage"):
        return str(error["errorMessage"])
    violations = (data.get("validationErrorData") or {}).get("violations") or []
    if violations:
        return "; ".join(f"{v.get('fieldPath')}: {v.get('message')}" for v in violations)
    for source in (body if isinstance(body, dict) else {}, data):
        if source.get("message"):
            return str(source["message"])
    return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _exception_message(error: requests.RequestException) -> str:
    # The exception text holds the URL (whose query may hold a signature) and the reason,
    # never the request headers.
    return redact_text(f"{type(error).__name__}: {error}")[:500]
