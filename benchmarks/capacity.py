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


def permits_per_second(url: str, processes: int, seconds: float) -> dict[str, float]:
    """Permits/s from ``processes`` processes: ctq's limiter, then limits' moving window."""
    redis.Redis.from_url(url).flushall()
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        ctq = sum(pool.starmap(_ctq_permits, [(url, seconds)] * processes)) / seconds
        redis.Redis.from_url(url).flushall()
        moving = sum(pool.starmap(_limits_hits, [(url, seconds)] * processes)) / seconds
    return {"ctq_permits_per_s": round(ctq), "limits_moving_window_per_s": round(moving)}
