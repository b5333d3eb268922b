"""Code run in separate processes by the limiter tests (each with its own Redis connection)."""

from __future__ import annotations

import random
import time
from typing import Any
from unittest import mock

import limits
import redis

from worker import keys
from worker.limiter import Limiter, Permit, PointsClaim, Share

RATE = "20/second"
LIMITER_KEY = keys.limiter("test-ip", "api.test")
NO_POINTS = PointsClaim("ctq:points:test:none", 0, -1, 60)


def make_limiter(url: str, margin: float = 0.01) -> Limiter:
    client = redis.Redis.from_url(url, decode_responses=True)
    return Limiter(client, LIMITER_KEY, limits.parse(RATE), margin=margin)


def server_now_us(limiter: Limiter) -> int:
    seconds, micros = limiter.client.time()  # type: ignore[misc]
    return int(seconds * 1_000_000 + micros)


def take_permits(url: str, count: int, clock_skew: float, seed: int) -> list[dict[str, Any]]:
    """Take ``count`` permits on random lanes with this process's clock off by ``clock_skew``
    seconds; return each slot and the server time at which the process actually went ahead."""
    real_time = time.time
    rng = random.Random(seed)
    with mock.patch("time.time", lambda: real_time() + clock_skew):
        limiter = make_limiter(url)
        taken = []
        for _ in range(count):
            lane = rng.choice(keys.LANES)
            permit = limiter.acquire(lane, NO_POINTS)
            assert permit is not None
            taken.append({"slot": permit.slot_us, "went": server_now_us(limiter), "lane": lane})
    return taken


def spend_points(url: str, lane: str, tries: int, budget_key: str, cap: int, seed: int) -> int:
    """Try ``tries`` requests against a points cap; half fail and are refunded. Returns the
    number that succeeded (committed points)."""
    rng = random.Random(seed)
    client = redis.Redis.from_url(url, decode_responses=True)
    limiter = Limiter(client, LIMITER_KEY, limits.parse("100000/second"), margin=0)
    succeeded = 0
    for _ in range(tries):
        claim = PointsClaim(budget_key, 1, cap, 60)
        permit = limiter.acquire(lane, claim)
        if permit is None:
            continue
        assert isinstance(permit, Permit)
        success = rng.random() < 0.5
        with client.pipeline(transaction=True) as pipe:
            pipe.zrem(claim.reservations_key, permit.reservation)
            if success:
                pipe.hincrby(budget_key, "used", 1)
            pipe.execute()
        succeeded += success
    return succeeded


def book_after_pause(url: str) -> tuple[int, int]:
    """Book once from a fresh process; return (slot, server now)."""
    limiter = make_limiter(url)
    _, slot, now = limiter.book(keys.REALTIME, NO_POINTS, "other-process")
    return slot, now


def take_bulk_permits_together(url: str, account: str, weight: int, processes: int) -> int:
    """Take bulk permits for ``account`` (with its ``weight``) for 3 s of server time, starting
    once all ``processes`` are up (a loaded machine starts them seconds apart); return how
    many were taken."""
    limiter = make_limiter(url)
    client = limiter.client
    client.incr("test:fair:ready")
    while int(client.get("test:fair:ready") or 0) < processes:  # type: ignore[arg-type]
        time.sleep(0.01)
    client.set("test:fair:go", server_now_us(limiter) + 200_000, nx=True)
    go = int(client.get("test:fair:go"))  # type: ignore[arg-type]
    until = go + 3_000_000
    while server_now_us(limiter) < go:
        time.sleep(0.005)
    share = Share(account, weight)
    taken = 0
    while server_now_us(limiter) < until:
        permit = limiter.acquire(keys.BULK, NO_POINTS, share=share)
        assert isinstance(permit, Permit)
        taken += permit.slot_us < until
    return taken
