"""One rate limiter shared by every worker process and host, kept in Redis.

A permit is booked right before each request by ``acquire.lua``, which reads the Redis
server's clock: any limit+1 consecutive permits span at least the window plus the margin, so
no window of the API ever holds more than the limit. Bulk permits are paced one interval
((window + margin) / limit) apart and only a slot free now is booked; realtime permits take
any room left in the window (a quarter interval apart) and may book ahead, so a callback
arriving during a bulk flood goes first. For a few seconds after a callback, bulk leaves one
permit of every window free for the next one, and more while callbacks come in numbers. The
worker sleeps until its slot, exactly, then sends."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit

import limits
import redis

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from worker import keys
from worker.scripts import script


class Booking(IntEnum):
    """What ``acquire.lua`` answers to a booking attempt."""

    BOOKED = 0  # the slot is this job's
    COME_BACK = 1  # bulk: no slot free now; come back when told
    POINTS_SPENT = 2  # the day's points are spent
    YIELD = 3  # bulk: a callback is waiting; give the process to it


# Booking members must be unique per limiter key across every Limiter object and process:
# booking an existing member again would move its slot instead of adding one.
_MEMBER_IDS = itertools.count()
# Realtime jobs never have to come back: they book whatever slot is next.
REALTIME_HORIZON_US = 24 * 3600 * 1_000_000
# Bulk jobs book a slot at most this far ahead and come back this much before it: a process
# wakes a few ms late (the sleep, the give-way check, the booking's round trip), and booking
# "now" then would push every later slot by that much (b): 200 requests took 0.5-0.8 s more
# than their pace). A callback loses at most this long to a bulk booking made ahead.
BULK_HORIZON_US = 20_000
# The learned margin (observe.lua): the spread is the 99th percentile of the last 200 round
# trips minus their minimum; after a 429 widened it by half, every 10 calm answers narrow it
# by 10 ms (a 150 ms margin widened to 225 ms is back in 75 answers: 15 s at 5/s).
RTT_SAMPLES = 200
SPREAD_PERCENTILE = 0.95
DECAY_EVERY = 10
DECAY_STEP_US = 10_000
# For this long after a realtime permit, bulk bookings leave this many permits of every
# window free, plus one for each realtime permit a window saw on average meanwhile
# (acquire.lua): a callback that follows finds room at once instead of waiting for the next
# paced slot behind a batch. Bulk runs at (limit - 1) / limit while callbacks come now and
# then, and gives up more of the rate while they come in numbers: c)'s 50 callbacks in 32 s
# (1.6 a window) leave bulk 2 of 5, and their slowest then waits at most 0.35 s in 77 % of
# draws instead of 49 % (``benchmarks.callback_reserve``).
REALTIME_RESERVE_S = 5.0
RESERVED_PERMITS = 1
# Until 5 round trips are measured, the margin assumes a spread of up to this much.
SLOW_START_US = 150_000
# A bulk job waiting for a free slot looks this often for a callback waiting for a process,
# and gives its process to it at once: the first to see it claims it for 100 ms, time for the
# freed process to take the message, so one bulk job per callback, not all, steps aside.
CALLBACK_LOOK_EVERY = 0.02
GIVE_WAY_CLAIM_MS = 100


@dataclass(frozen=True)
class PointsClaim:
    """The points one request reserves: ``cap`` < 0 means no budget is enforced.

    The reservation lives ``hold_us`` past the permit's slot (as long as the request can
    take), so the points of a worker that died mid-request come back by themselves.
    """

    key: str
    cost: int
    cap: int
    ttl: int
    hold_us: int = 60_000_000

    @property
    def reservations_key(self) -> str:
        return keys.points_reservations(self.key)


@dataclass(frozen=True)
class Share:
    """Whose permit it is, for the fair share between accounts within a lane: the account's
    name and its weight (``weight`` times the permits of an account of weight 1)."""

    account: str = DEFAULT_ACCOUNT
    weight: int = 1


ALONE = Share()


@dataclass(frozen=True)
class ComeBack:
    """No permit now: come back after ``delay`` seconds (``why`` says why not now)."""

    delay: float
    why: str = "the limiter's next slot is further ahead than a worker waits"
    give_way: bool = False  # a bulk job steps aside for a waiting callback


@dataclass(frozen=True)
class Permit:
    """A booked permit: the slot it was booked for, and the points it reserved."""

    member: str
    slot_us: int
    claim: PointsClaim

    @property
    def reservation(self) -> str:
        """The member of the points reservation this permit made."""
        return f"{self.member}/{self.claim.cost}"


GIVE_WAY = ComeBack(0.0, "a callback was waiting for a worker: gave way", give_way=True)


class Limiter:
    """The shared limiter for one key (egress IP and API host)."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        rate: limits.RateLimitItem,
        *,
        margin: float,
        margin_max: float = 0.3,
        sleep: Callable[[float], None] = time.sleep,
        realtime_queues: Sequence[str] = (keys.REALTIME,),
        realtime_reserve: float = REALTIME_RESERVE_S,
    ) -> None:
        self.client = client
        self.key = key
        self.limit = rate.amount
        self.window_us = int(rate.get_expiry() * 1_000_000)
        self.margin_us = int(margin * 1_000_000)  # the floor: the learned margin is never less
        self.margin_max_us = max(self.margin_us, int(margin_max * 1_000_000))
        self.slow_start_us = min(self.margin_max_us, max(self.margin_us, SLOW_START_US))
        self.sleep = sleep
        # A bulk job gives way while any of these holds a message (see acquire.lua).
        self.realtime_queues = list(realtime_queues)
        self.realtime_reserve_us = int(realtime_reserve * 1_000_000)
        self._script = script(client, "acquire")
        self._give_way = script(client, "give_way")
        self._permits, self._pause = f"{key}:permits", f"{key}:pause"
        self._rtt, self._margin = f"{key}:rtt", f"{key}:margin"

    @property
    def lateness_us(self) -> float:
        """How late after its slot a permit may still be used: half the floor margin (at
        least 1 ms); the learned spread comes on top of it (observe.lua)."""
        return max(self.margin_us / 2, 1000.0)

    def book(
        self, lane: str, claim: PointsClaim, member: str, share: Share = ALONE
    ) -> tuple[Booking, int, int]:
        """One booking attempt: ``(status, slot_us, now_us)`` on the server's clock."""
        bulk = lane == keys.BULK
        status, slot, now = self._script(
            keys=[
                self._permits,
                self._pause,
                f"{self.key}:waiting:{lane}",
                claim.key,
                claim.reservations_key,
                self._margin,
                f"{self.key}:served:{lane}",
                f"{self.key}:turns:{lane}",
                f"{self.key}:realtime-recent-permits",
                *self.realtime_queues,
            ],
            args=[
                self.window_us,
                self.limit,
                BULK_HORIZON_US if bulk else REALTIME_HORIZON_US,
                member,
                claim.cost,
                claim.cap,
                claim.ttl,
                claim.hold_us,
                self.margin_us,
                int(bulk),
                self.slow_start_us,
                int(bulk),
                share.account,
                share.weight,
                int(not bulk),
                RESERVED_PERMITS,
                self.realtime_reserve_us,
            ],
        )
        return Booking(int(status)), int(slot), int(now)

    def acquire(
        self,
        lane: str,
        claim: PointsClaim,
        max_wait: float = math.inf,
        share: Share = ALONE,
    ) -> Permit | ComeBack | None:
        """Book a permit and sleep until its slot; None when the day's points are spent.

        A slot more than ``max_wait`` seconds ahead is not waited for in this process: the
        booking is given back and ``ComeBack`` says when to try again (the caller parks the
        job durably instead of holding its message past the broker's visibility timeout).

        A process that wakes later than ``lateness_us`` after its slot (a stalled process, a
        loaded machine) cancels that permit and books again: sent late, it could land in the
        same API window as the permits booked after it. So does one whose slot a pause begun
        while it slept covers (another worker's 429): the pause holds for permits booked
        before it too.

        Bulk permits are shared fairly between the accounts with jobs waiting (``share``:
        this job's account and weight); realtime permits go first come, first served.
        """
        while True:
            member = f"{os.getpid()}.{next(_MEMBER_IDS)}"
            status, slot, now = self.book(lane, claim, member, share)
            if status is Booking.POINTS_SPENT:
                return None
            if status is Booking.YIELD:
                return GIVE_WAY
            if status is Booking.BOOKED and slot <= now:
                return Permit(member, slot, claim)
            delay = (slot - now) / 1_000_000
            if delay > max_wait:
                if status is Booking.BOOKED:
                    self.cancel(Permit(member, slot, claim))
                return ComeBack(
                    delay,
                    f"the limiter's next slot is {delay:.1f} s away, longer than a worker waits",
                )
            if status is Booking.COME_BACK and lane == keys.BULK:
                if self._callback_arrives_within(delay):
                    return GIVE_WAY
                continue
            started = time.monotonic()
            self.sleep(delay)
            if status is not Booking.BOOKED:
                continue
            permit = Permit(member, slot, claim)
            covered = self._paused_past(slot)
            # Measured after that look-up: a slow answer makes the request late too.
            late = time.monotonic() - started - delay
            if late * 1_000_000 <= self.lateness_us and not covered:
                return permit
            self.cancel(permit)

    def _paused_past(self, slot_us: int) -> bool:
        """Whether a pause that ends after ``slot_us`` is in force: one begun after that slot
        was booked (a booking made during a pause is at or after its end)."""
        resume = self.client.get(self._pause)
        return resume is not None and int(resume) > slot_us

    def _callback_arrives_within(self, seconds: float) -> bool:
        """Sleep ``seconds``, unless a callback's message waits for a process meanwhile and
        this job is one to give way to it (True): one bulk job per waiting message."""
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            self.sleep(min(left, CALLBACK_LOOK_EVERY))
            if self._give_way(
                keys=[f"{self.key}:giving-way", *self.realtime_queues],
                args=[f"{os.getpid()}.{next(_MEMBER_IDS)}", GIVE_WAY_CLAIM_MS],
            ):
                return True
        return False

    def cancel(self, permit: Permit) -> None:
        """Give back a booked permit that was not used, and the points it reserved."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._permits, permit.member)
            pipe.zrem(permit.claim.reservations_key, permit.reservation)
            pipe.execute()

    def pause(self, seconds: float | None) -> float:
        """After a 429: nobody books on this key for ``seconds`` (default one window), and
        the margin doubles (once per pause)."""
        pause_us = int((seconds if seconds is not None else self.window_us / 1_000_000) * 1_000_000)
        resume = script(self.client, "pause")(
            keys=[self._pause, f"{self.key}:stats", self._margin],
            args=[max(1, pause_us), self.margin_us, self.margin_max_us],
        )
        return int(resume) / 1_000_000

    def observe(self, round_trip: float | None) -> int:
        """An answer came back after ``round_trip`` seconds (None: no usable sample): learn
        from it. Returns the margin now in force, in µs."""
        sample = -1 if round_trip is None else int(round_trip * 1_000_000)
        margin = script(self.client, "observe")(
            keys=[self._rtt, self._margin],
            args=[
                sample,
                self.margin_us,
                self.margin_max_us,
                RTT_SAMPLES,
                SPREAD_PERCENTILE,
                DECAY_EVERY,
                DECAY_STEP_US,
                self.slow_start_us,
            ],
        )
        return int(margin)

    def snapshot(self) -> dict[str, int | float]:
        """What ``ctq status`` shows for this key."""
        seconds, micros = self.client.time()
        now = seconds * 1_000_000 + micros
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zcount(f"{self.key}:permits", now - self.window_us, now)
            pipe.zcount(f"{self.key}:permits", f"({now}", "+inf")
            for lane in keys.LANES:
                pipe.zcount(f"{self.key}:waiting:{lane}", f"({now}", "+inf")
            pipe.hget(f"{self.key}:stats", "http_429")
            pipe.get(f"{self.key}:pause")
            pipe.hmget(self._margin, "margin_us", "spread_us")
            in_window, booked_ahead, *waiting, seen_429, paused, learned = pipe.execute()
        margin_us = max(self.margin_us, int(learned[0] or self.slow_start_us))
        window_s = self.window_us / 1_000_000
        return {
            "limit": self.limit,
            "window_s": self.window_us / 1_000_000,
            "permits_in_window": in_window,
            "booked_ahead": booked_ahead,
            **{f"waiting_{lane}": n for lane, n in zip(keys.LANES, waiting, strict=True)},
            "http_429": int(seen_429 or 0),
            "paused_for_s": max(0.0, (int(paused or 0) - now) / 1_000_000),
            "margin_ms": round(margin_us / 1000, 1),
            "spread_ms": round(int(learned[1] or 0) / 1000, 1),
            "effective_per_s": round(self.limit / (window_s + margin_us / 1_000_000), 3),
        }


def limiter_key(egress_ip: str, api_url: str) -> str:
    """The limiter key of requests from ``egress_ip`` to the API at ``api_url`` (host and base
    path: two APIs behind one host, as in the sandbox, keep their own limits)."""
    parts = urlsplit(api_url)
    return keys.limiter(egress_ip, (parts.netloc + parts.path.rstrip("/")) or api_url)
