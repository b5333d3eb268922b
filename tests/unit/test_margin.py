"""The limiter's margin, learned from round trips and 429s (observe.lua, pause.lua)."""

from __future__ import annotations

import random

import fakeredis
import limits
import pytest

from worker.limiter import DECAY_EVERY, DECAY_STEP_US, Limiter
from worker.runtime import NO_POINTS

FLOOR, CEILING = 0.025, 0.5


@pytest.fixture
def limiter(fake_redis: fakeredis.FakeRedis) -> Limiter:
    return Limiter(
        fake_redis, "ctq:limiter:t", limits.parse("5/second"), margin=FLOOR, margin_max=CEILING
    )


def test_a_few_samples_are_corrected_for_the_range_they_cannot_see_yet(limiter: Limiter) -> None:
    for round_trip in (0.010, 0.030, 0.050, 0.070, 0.110):
        margin = limiter.observe(round_trip)
    assert margin == 100_000 * 6 // 4 + 12_500  # 5 samples spanning 100 ms: 150 ms expected


def test_steady_round_trips_keep_the_floor(limiter: Limiter) -> None:  # after a slow start
    for _ in range(100):
        margin = limiter.observe(0.002)
    assert margin == 25_000
    assert limiter.snapshot()["effective_per_s"] == pytest.approx(5 / 1.025, abs=1e-3)


def test_the_margin_covers_the_spread_of_round_trips_plus_half_the_floor(limiter: Limiter) -> None:
    rng = random.Random(1)
    for _ in range(200):
        margin = limiter.observe(0.010 + rng.uniform(0, 0.050))  # 0-50 ms of jitter
    assert 45_000 + 12_500 <= margin <= 50_000 + 12_500
    shown = limiter.snapshot()
    assert 45 <= shown["spread_ms"] <= 50 and shown["margin_ms"] == pytest.approx(
        margin / 1000, abs=0.1
    )


def book_six(limiter: Limiter) -> list[int]:
    """The slots of limit + 1 realtime bookings in a row: the sixth waits for the window."""
    return [limiter.book("realtime", NO_POINTS, f"m{n}")[1] for n in range(6)]


def test_the_learned_margin_slows_the_pace_of_bookings(limiter: Limiter) -> None:
    for _ in range(50):
        limiter.observe(0.100)
        limiter.observe(0.250)  # a spread of 150 ms
    slots = book_six(limiter)
    spread = int(150_000 * 101 / 99)  # 100 samples: the range, corrected for the sample size
    assert limiter.snapshot()["margin_ms"] == round((spread + 12_500) / 1000, 1)
    # Any 6 permits span the window and the margin (more only if this process stalled).
    assert slots[5] - slots[0] >= 1_000_000 + spread + 12_500


def test_a_429_widens_the_margin_once_and_calm_answers_narrow_it_slowly(limiter: Limiter) -> None:
    for _ in range(10):
        limiter.observe(0.002)
    limiter.pause(1.0)
    limiter.pause(1.0)  # another request of the same burst: no second widening
    assert limiter.snapshot()["margin_ms"] == 37.5
    for _ in range(DECAY_EVERY):
        margin = limiter.observe(0.002)
    assert margin == 37_500 - DECAY_STEP_US
    for _ in range(DECAY_EVERY * 10):
        margin = limiter.observe(0.002)
    assert margin == 25_000  # back to the floor, never below


def test_before_any_round_trip_is_known_bookings_are_paced_at_the_slow_start_margin(
    limiter: Limiter,
) -> None:
    slots = book_six(limiter)
    assert slots[5] - slots[0] == 1_000_000 + 150_000
    assert limiter.snapshot()["margin_ms"] == 150


def test_the_margin_never_exceeds_its_ceiling(
    limiter: Limiter, fake_redis: fakeredis.FakeRedis
) -> None:
    for _ in range(8):
        fake_redis.delete("ctq:limiter:t:pause")  # each 429 in a new pause
        limiter.pause(0.001)
    assert limiter.snapshot()["margin_ms"] == 500
