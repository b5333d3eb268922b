"""Counters for ``/metrics`` and the dashboard, kept in Redis: every worker process on every
host adds to the same ones, so any API process reads the whole cluster's numbers.

One write per request sent (``record_sent``), after its answer: the request by outcome, the
permit it used (per second, kept 15 minutes), how long it waited for that permit (a
histogram), and the points it spent (per 10 minutes, for today's burn-down).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker import keys

# Seconds; the last bucket catches the waits longer than any other (Prometheus' "+Inf").
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, math.inf)
HISTORY_SECONDS = 15 * 60
SPENT_BUCKET_SECONDS = 600
# As long as the day's points themselves (``worker.ledger.KEEP_SECONDS``).
SPENT_KEEP_SECONDS = 3 * 86400


@dataclass(frozen=True)
class Sent:
    """One request a worker sent, as the counters see it."""

    provider: str
    kind: str
    outcome: str
    lane: str
    limiter: str  # the limiter key its permit came from
    slot_us: int  # its permit's slot, on the Redis server's clock
    waited: float  # seconds from asking for the permit to holding it
    points_key: str = ""  # the site-day whose points it spent (when it succeeded)
    points: int = 0


def record_sent(client: redis.Redis, sent: Sent) -> None:
    """Count one request sent, in one transaction."""
    second = sent.slot_us // 1_000_000
    used = keys.permits_used(sent.limiter, second // 60)
    wait = keys.permit_wait(sent.lane)
    with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(keys.REQUESTS_SENT, _request_field(sent.provider, sent.kind, sent.outcome))
        pipe.hincrby(used, str(second % 60))
        pipe.expire(used, HISTORY_SECONDS + 120)
        pipe.hincrby(wait, _bucket(sent.waited))
        pipe.hincrby(wait, "count")
        pipe.hincrbyfloat(wait, "sum", sent.waited)
        if sent.points > 0:
            spent = keys.points_spent_at(sent.points_key)
            pipe.hincrby(spent, str(second - second % SPENT_BUCKET_SECONDS), sent.points)
            pipe.expire(spent, SPENT_KEEP_SECONDS)
        pipe.execute()


def count_request(client: redis.Redis, provider: str, kind: str, outcome: str) -> None:
    """Count a request sent without a permit (Pozvonim's token request)."""
    client.hincrby(keys.REQUESTS_SENT, _request_field(provider, kind, outcome))


def requests_sent(client: redis.Redis) -> dict[tuple[str, str, str], int]:
    """Requests sent to the APIs so far: (provider, kind, outcome) -> number."""
    raw: dict[str, str] = client.hgetall(keys.REQUESTS_SENT)  # type: ignore[assignment]
    found = {}
    for field, number in raw.items():
        provider, kind, outcome = field.split("|", 2)
        found[provider, kind, outcome] = int(number)
    return found


@dataclass(frozen=True)
class Histogram:
    """Cumulative buckets ``(upper bound, observations at or below it)``, count and sum."""

    buckets: list[tuple[float, int]]
    count: int
    sum: float


def permit_waits(client: redis.Redis, lanes: Sequence[str] = keys.LANES) -> dict[str, Histogram]:
    """The histogram of permit waits of each lane."""
    with client.pipeline(transaction=False) as pipe:
        for lane in lanes:
            pipe.hgetall(keys.permit_wait(lane))
        raw: list[dict[str, str]] = pipe.execute()
    found = {}
    for lane, fields in zip(lanes, raw, strict=True):
        total, cumulative = 0, []
        for bound in WAIT_BUCKETS:
            total += int(fields.get(_bucket(bound), 0))
            cumulative.append((bound, total))
        found[lane] = Histogram(
            cumulative, int(fields.get("count", 0)), float(fields.get("sum", 0))
        )
    return found


def permits_per_second(
    client: redis.Redis, limiter: str, now_us: int, seconds: int = HISTORY_SECONDS
) -> list[int]:
    """Permits of ``limiter`` used in each of the last ``seconds`` seconds, oldest first; the
    last is the second ``now_us`` (server clock) falls in."""
    last = now_us // 1_000_000
    first = last - seconds + 1
    minutes = range(first // 60, last // 60 + 1)
    with client.pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.hgetall(keys.permits_used(limiter, minute))
        raw: list[dict[str, str]] = pipe.execute()
    per_second = dict.fromkeys(range(first, last + 1), 0)
    for minute, fields in zip(minutes, raw, strict=True):
        for second, number in fields.items():
            moment = minute * 60 + int(second)
            if moment in per_second:
                per_second[moment] = int(number)
    return list(per_second.values())


def points_spent_at(client: redis.Redis, points_key: str) -> dict[int, int]:
    """Points committed on one site-day: start of each 10-minute bucket -> points."""
    raw: dict[str, str] = client.hgetall(keys.points_spent_at(points_key))  # type: ignore[assignment]
    return dict(sorted((int(start), int(points)) for start, points in raw.items()))


def _request_field(provider: str, kind: str, outcome: str) -> str:
    return f"{provider}|{kind}|{outcome}"


def _bucket(waited: float) -> str:
    bound = next(b for b in WAIT_BUCKETS if waited <= b)
    return "le=+Inf" if bound == math.inf else f"le={bound:g}"
