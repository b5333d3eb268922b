"""d) How many permits per second the limiter itself can hand out, beside `limits`."""

from __future__ import annotations

import multiprocessing
import time

import limits
import limits.storage
import limits.strategies
import redis

from worker import keys
from worker.limiter import Limiter, PointsClaim

HIGH_RATE = "1000000/second"


def _ctq_permits(url: str, seconds: float) -> int:
    client = redis.Redis.from_url(url, decode_responses=True)
    limiter = Limiter(client, keys.limiter("bench", "capacity"), limits.parse(HIGH_RATE), margin=0)
    claim = PointsClaim(keys.points("bench", "capacity"), 0, -1, 60)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if limiter.acquire(keys.REALTIME, claim) is not None:
            count += 1
    return count


def _limits_hits(url: str, seconds: float) -> int:
    storage = limits.storage.RedisStorage(url)
    limiter = limits.strategies.MovingWindowRateLimiter(storage)
    item = limits.parse(HIGH_RATE)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        count += limiter.hit(item, "bench", "capacity")
    return count


def _pings(url: str, seconds: float) -> int:
    client = redis.Redis.from_url(url)
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.ping()
        count += 1
    return count


def permits_per_second(url: str, processes: int, seconds: float) -> dict[str, int]:
    """Per second from ``processes`` processes: ctq's permits, `limits`' moving-window hits,
    and plain PINGs (the most this machine can do with one round trip per call)."""
    context = multiprocessing.get_context("spawn")
    rates = {}
    with context.Pool(processes) as pool:
        for name, measure in (
            ("ctq_permits_per_s", _ctq_permits),
            ("limits_moving_window_per_s", _limits_hits),
            ("redis_ping_per_s", _pings),
        ):
            redis.Redis.from_url(url).flushall()
            rates[name] = round(sum(pool.starmap(measure, [(url, seconds)] * processes)) / seconds)
    return rates
