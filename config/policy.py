"""What ctq does with every answer the API can give: the outcome policy, in one table.

``worker.outcome.classify`` turns a response or a transport error into one of these keys and
looks the rule up here. Precedence: a code the operator listed in CTQ_POINTS_EXHAUSTED_CODES
first (they told us what it means); then the HTTP statuses that speak for the whole account or
IP (401, 403, 429), whatever the body says; then the known codes; then, for an unknown code,
the status again (5xx retries, 402 pauses). The README prints this table
(``render_markdown``), and a test keeps the two identical.

Unknown codes are the one place where the documents leave us guessing. Dead-lettering them
at once threw away whole backlogs when the code meant "account-level" (e.g. an undocumented
"points spent"), so they are retried, and a run of them on one site opens its breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What happens to a job after one request."""

    DONE = "done"
    RETRY = "retry"
    PAUSE = "pause"
    DEAD = "dead"


class Delay(StrEnum):
    """How long a retried job waits before its next attempt."""

    NONE = "-"
    BACKOFF = "backoff"
    LONG = "long"
    LIMITER = "limiter pause"
    RESET = "next day"


@dataclass(frozen=True)
class Rule:
    """One row of the policy: when it applies, what happens, and why."""

    when: str
    outcome: Outcome
    delay: Delay
    why: str


POLICY: dict[str, Rule] = {
    "http_2xx": Rule("HTTP 2xx without an API error", Outcome.DONE, Delay.NONE, "accepted"),
    "http_401": Rule(
        "HTTP 401, whatever the body says",
        Outcome.PAUSE,
        Delay.NONE,
        "bad credentials: account-level",
    ),
    "http_403": Rule(
        "HTTP 403, whatever the body says",
        Outcome.PAUSE,
        Delay.NONE,
        "bad credentials: account-level",
    ),
    "http_429": Rule(
        "HTTP 429, whatever the body says",
        Outcome.RETRY,
        Delay.LIMITER,
        "over the per-IP rate: every worker pauses this limiter key; no attempt used",
    ),
    "http_5xx": Rule(
        "HTTP 5xx (with no code, or a code not listed here)",
        Outcome.RETRY,
        Delay.BACKOFF,
        "server-side fault, transient",
    ),
    "timeout": Rule(
        "connect or read timeout",
        Outcome.RETRY,
        Delay.BACKOFF,
        "transient; a read timeout may hide a success (see README)",
    ),
    "connection": Rule(
        "connection refused, reset or DNS failure", Outcome.RETRY, Delay.BACKOFF, "transient"
    ),
    "token_missing": Rule(
        "Pozvonim's token request answered 200/201 without a token",
        Outcome.PAUSE,
        Delay.NONE,
        "no call can be signed: account-level; the call was not sent",
    ),
    "api_10007": Rule(
        "code 10007", Outcome.RETRY, Delay.BACKOFF, "minimum interval for this phone/session"
    ),
    "api_10005": Rule(
        "code 10005", Outcome.RETRY, Delay.LONG, "request limit for this session; wait long"
    ),
    "api_10006": Rule(
        "code 10006", Outcome.RETRY, Delay.LONG, "request limit for this phone; wait long"
    ),
    "points_spent": Rule(
        "a code in `CTQ_POINTS_EXHAUSTED_CODES`",
        Outcome.RETRY,
        Delay.RESET,
        "the day's points are spent: the job waits for the reset; no attempt used",
    ),
    "api_10001": Rule("code 10001", Outcome.PAUSE, Delay.NONE, "no callback minutes left"),
    "api_10002": Rule("code 10002", Outcome.PAUSE, Delay.NONE, "callback service not enabled"),
    "http_402": Rule(
        "HTTP 402, with no code or a code not listed here",
        Outcome.PAUSE,
        Delay.NONE,
        "payment required: the account's balance or points, account-level",
    ),
    "validation": Rule(
        "`validationError` body", Outcome.DEAD, Delay.NONE, "the API refused the payload"
    ),
    "api_1": Rule("code 1", Outcome.DEAD, Delay.NONE, "JSON syntax error or empty request"),
    "api_10003": Rule("code 10003", Outcome.DEAD, Delay.NONE, "no enabled widget with routeKey"),
    "api_10004": Rule("code 10004", Outcome.DEAD, Delay.NONE, "session not found"),
    "api_10013": Rule("code 10013", Outcome.DEAD, Delay.NONE, "invalid phone number"),
    "api_other": Rule(
        "any other API error code (any other status)",
        Outcome.RETRY,
        Delay.BACKOFF,
        "unknown: retried with backoff, never dead-lettered at once; "
        "`CTQ_UNKNOWN_CODE_PAUSE_AFTER` such answers in a row pause the site's lane",
    ),
    "http_4xx": Rule("any other HTTP 4xx", Outcome.DEAD, Delay.NONE, "the request itself is wrong"),
    "http_other": Rule(
        "any other HTTP status (1xx, 3xx)", Outcome.DEAD, Delay.NONE, "unexpected answer"
    ),
}


def render_markdown() -> str:
    """The policy as the Markdown table the README shows."""
    lines = ["| answer | outcome | wait | why |", "|---|---|---|---|"]
    for rule in POLICY.values():
        lines.append(f"| {rule.when} | {rule.outcome} | {rule.delay} | {rule.why} |")
    return "\n".join(lines)
