"""What a permit booked ahead does when its process wakes (Limiter.acquire): woken too late,
or inside a pause begun while it slept, it gives the permit back and books again. Run on a
fake clock: fakeredis reads ``time.time`` for TIME and expiry, the limiter ``time.monotonic``
for how late it woke."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import fakeredis
import limits
import pytest

from worker import keys
from worker.limiter import Booking, Limiter, Permit, PointsClaim

KEY = "ctq:limiter:t"
CLAIM = PointsClaim("ctq:points:t:2026-11-22", 1, -1, 60)  # reserves 1 point, no budget


class Clock:
    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    @property
    def now_us(self) -> int:
        return round(self.now * 1_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr("time.time", fake)
    monkeypatch.setattr("time.monotonic", fake)
    yield fake


class Sleeper:
    """The limiter's sleep: moves the clock on by what was asked, plus ``late[n]`` on the n-th
    call, after running ``during[n]`` (what other workers do meanwhile)."""

    def __init__(
        self,
        clock: Clock,
        late: tuple[float, ...] = (),
        during: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self.clock, self.late, self.during = clock, late, during
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        n = len(self.asked)
        self.asked.append(seconds)
        if n < len(self.during):
            self.during[n]()
        self.clock.now += seconds + (self.late[n] if n < len(self.late) else 0.0)


def limiter_with_a_permit_taken(client: fakeredis.FakeRedis, sleep: Sleeper) -> Limiter:
    """A 5/s limiter whose last permit was taken just now: the next realtime slot is ahead."""
    limiter = Limiter(client, KEY, limits.parse("5/second"), margin=0.025, sleep=sleep)
    status, slot, now = limiter.book(keys.REALTIME, CLAIM, "taken")
    assert (status, slot) == (Booking.BOOKED, now)
    return limiter


def bookings(limiter: Limiter, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record every (member, slot) ``acquire`` books."""
    booked: list[tuple[str, int]] = []
    book = limiter.book

    def recording(*args: object, **kwargs: object) -> tuple[Booking, int, int]:
        status, slot, now = book(*args, **kwargs)  # type: ignore[arg-type]
        if status is Booking.BOOKED:
            booked.append((str(args[2]), slot))
        return status, slot, now

    monkeypatch.setattr(limiter, "book", recording)
    return booked


def test_a_process_waking_later_than_half_the_margin_gives_its_permit_back_and_books_again(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    sleep = Sleeper(clock, late=(0.1,))  # 100 ms late: more than half of the 25 ms floor
    limiter = limiter_with_a_permit_taken(client, sleep)
    booked = bookings(limiter, monkeypatch)

    permit = limiter.acquire(keys.REALTIME, CLAIM)

    assert isinstance(permit, Permit)
    [(first, first_slot), (second, second_slot)] = booked
    assert len(sleep.asked) == 1 and abs(clock.now_us - (first_slot + 100_000)) <= 1
    # The late permit is gone, with the point it reserved; the new one is booked from now.
    assert permit.member == second != first
    assert client.zrange(f"{KEY}:permits", 0, -1) == ["taken", second]
    assert client.zrange(CLAIM.reservations_key, 0, -1) == ["taken/1", f"{second}/1"]
    assert second_slot == permit.slot_us == clock.now_us


def test_a_process_waking_within_half_the_margin_keeps_its_permit(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    sleep = Sleeper(clock, late=(0.01,))  # 10 ms late: within 12.5 ms
    limiter = limiter_with_a_permit_taken(client, sleep)
    booked = bookings(limiter, monkeypatch)

    permit = limiter.acquire(keys.REALTIME, CLAIM)

    assert isinstance(permit, Permit)
    assert [(permit.member, permit.slot_us)] == booked
    assert client.zrange(f"{KEY}:permits", 0, -1) == ["taken", permit.member]


def test_a_pause_begun_while_a_booked_permit_waits_holds_for_it_too(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    resumes: list[float] = []
    other_worker = Limiter(client, KEY, limits.parse("5/second"), margin=0.025)
    # Another worker meets a 429 with Retry-After: 2 while this one sleeps until its slot.
    sleep = Sleeper(clock, during=(lambda: resumes.append(other_worker.pause(2.0)),))
    limiter = limiter_with_a_permit_taken(client, sleep)
    booked = bookings(limiter, monkeypatch)

    permit = limiter.acquire(keys.REALTIME, CLAIM)

    assert isinstance(permit, Permit)
    [(first, first_slot), (second, second_slot)] = booked
    [resume] = resumes
    assert first_slot < resume * 1_000_000  # the first slot fell inside the pause
    assert permit.member == second and second_slot >= resume * 1_000_000
    assert clock.now_us >= second_slot  # it slept until after the pause
    assert first not in client.zrange(f"{KEY}:permits", 0, -1)
    assert f"{first}/1" not in client.zrange(CLAIM.reservations_key, 0, -1)
