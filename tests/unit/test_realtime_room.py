"""Callbacks during a bulk backlog (acquire.lua): a callback takes the room left in the window
instead of the next paced slot, and for a while after one, bulk leaves a permit of every
window free, more while callbacks come in numbers. Run on a fake clock: fakeredis reads
``time.time`` for TIME and expiry."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import fakeredis
import limits
import pytest

from worker import keys
from worker.limiter import Booking, Limiter
from worker.runtime import NO_POINTS

KEEP_US = 1_025_000  # the window and the 25 ms floor margin: nothing learned, no slow start
INTERVAL_US = KEEP_US // 5


def more_than(limit: int, slots: list[int]) -> bool:
    """Whether some window of KEEP_US holds more than ``limit`` of these slots."""
    ordered = sorted(slots)
    return any(b - a < KEEP_US for a, b in zip(ordered, ordered[limit:], strict=False))


class Clock:
    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr("time.time", fake)
    yield fake


def make_limiter(client: fakeredis.FakeRedis, reserve: float) -> Limiter:
    limiter = Limiter(
        client, "ctq:limiter:t", limits.parse("5/second"), margin=0.025, realtime_reserve=reserve
    )
    for _ in range(10):
        limiter.observe(0.001)  # steady round trips: the margin is the floor
    return limiter


def run(
    limiter: Limiter, clock: Clock, callbacks_at: list[float], until: float, late: float = 0
) -> tuple[list[int], dict[float, int]]:
    """A bulk backlog that books whenever it may, coming back ``late`` seconds after it was
    told to, and callbacks arriving at the given offsets (seconds): every bulk slot, and each
    callback's wait for its slot in µs."""
    start = clock.now
    bulk: list[int] = []
    waits: dict[float, int] = {}
    arrivals = sorted(callbacks_at)
    next_bulk = start
    member = 0
    while clock.now < start + until:
        clock.now = min([next_bulk, *(start + a for a in arrivals)])
        member += 1
        if arrivals and clock.now >= start + arrivals[0]:
            arrived = arrivals.pop(0)
            status, slot, now = limiter.book(keys.REALTIME, NO_POINTS, f"r{member}")
            assert status is Booking.BOOKED
            waits[arrived] = slot - now
            continue
        status, slot, now = limiter.book(keys.BULK, NO_POINTS, f"b{member}")
        if status is Booking.BOOKED:
            bulk.append(slot)
            next_bulk = clock.now + 0.001
        else:
            next_bulk = slot / 1_000_000 + late
    return bulk, waits


def test_a_callback_during_a_backlog_waits_less_than_the_next_paced_slot(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    limiter = make_limiter(fake_redis, reserve=0)
    _, waits = run(limiter, clock, [3.05, 5.0, 7.13], until=9)
    # Bulk fills every window; the callback goes at the window's next free permit, never more
    # than one interval later, as the quarter-interval spacing of realtime lets it.
    assert all(wait <= INTERVAL_US for wait in waits.values())


def test_after_a_callback_bulk_leaves_room_so_the_next_ones_go_at_once(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    start = clock.now
    limiter = make_limiter(fake_redis, reserve=5)
    bulk, waits = run(limiter, clock, [3.0, 5.0, 6.5, 8.2], until=12)
    first, *following = waits.values()
    assert first <= INTERVAL_US
    assert following == [0, 0, 0]  # the reserved permit was free each time
    # Bulk took all 5 permits of a window before the first callback, 4 after it.
    assert more_than(4, [s for s in bulk if s / 1e6 < start + 3])
    assert not more_than(4, [s for s in bulk if s / 1e6 > start + 3])


def test_while_callbacks_come_in_numbers_bulk_leaves_them_more_room(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    start = clock.now
    limiter = make_limiter(fake_redis, reserve=5)
    every_600_ms = [2 + 0.6 * n for n in range(20)]  # 1.7 callbacks a window, for 12 s
    bulk, waits = run(limiter, clock, every_600_ms, until=20)
    callbacks = [int((start + arrived) * 1e6) + wait for arrived, wait in waits.items()]

    def in_window_before(slot: int) -> int:
        return sum(slot - KEEP_US < other <= slot for other in bulk + callbacks)

    # One permit free, plus the 1.7 (rounded: 2) callbacks a window saw over the last 5 s:
    # a bulk permit is booked only into a window with 3 free, and every callback goes at once.
    during = [s for s in bulk if start + 7 <= s / 1e6 < start + 13]
    assert during and all(in_window_before(slot) <= 2 for slot in during)
    assert all(wait == 0 for arrived, wait in waits.items() if arrived >= 7)
    assert more_than(4, [s for s in bulk if s / 1e6 >= start + 19])  # the whole rate back


def test_five_seconds_after_the_last_callback_bulk_has_the_whole_rate_back(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    limiter = make_limiter(fake_redis, reserve=5)
    start = clock.now
    bulk, _ = run(limiter, clock, [1.0], until=20)
    reserved = [s for s in bulk if start + 2.5 <= s / 1e6 < start + 5.5]
    whole = [s for s in bulk if s / 1e6 >= start + 7]
    assert not more_than(4, reserved) and len(reserved) >= 10
    assert more_than(4, whole)  # five a window again


def test_bulk_jobs_waiting_for_a_slot_free_one_process_per_waiting_callback(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    limiter = make_limiter(fake_redis, reserve=5)
    fake_redis.rpush(keys.REALTIME, "callback 1", "callback 2")

    def gives_way() -> bool:  # one bulk job waiting a moment for its slot
        return limiter._callback_arrives_within(0.001)

    assert [gives_way() for _ in range(3)] == [True, True, False]
    clock.now += 0.2  # the claims lapsed, and both messages still wait: give way again
    assert [gives_way() for _ in range(3)] == [True, True, False]
    fake_redis.delete(keys.REALTIME)
    clock.now += 0.2
    assert not gives_way()


def test_a_bulk_backlog_whose_processes_wake_late_keeps_its_pace(
    fake_redis: fakeredis.FakeRedis, clock: Clock
) -> None:
    limiter = make_limiter(fake_redis, reserve=5)
    bulk, _ = run(limiter, clock, [], until=10.5, late=0.004)  # 4 ms late every time
    # Booked at the pace, not 4 ms later each: 50 permits in 10 s, one interval apart.
    assert len(bulk) >= 50
    assert max(b - a for a, b in pairwise(bulk)) <= INTERVAL_US + 1
