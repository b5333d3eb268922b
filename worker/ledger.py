"""The daily points ledger: per account (its site) and calendar day in CTQ_TIMEZONE.

A permit reserves the method's cost (in ``acquire.lua``, atomically with the booking); a
success commits it, anything else refunds it. A reservation lapses on its own once its
request can no longer be in flight, so a worker killed mid-request leaks no points. With a
budget (the account's ``daily_points``, CTQ_DAILY_POINTS for ``default``), bulk jobs may
spend only the budget less the realtime reserve (CTQ_POINTS_RESERVE), realtime jobs all of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import redis

from config import Settings
from config.accounts import Account
from worker import keys
from worker.limiter import Permit, PointsClaim

KEEP_SECONDS = 3 * 86400
# A reservation outlives its slot by the request's timeouts and this much more.
HOLD_SLACK_SECONDS = 2.0


def day_of(timestamp: float, tz: ZoneInfo) -> str:
    """The calendar day (``YYYY-MM-DD``) that ``timestamp`` falls on in ``tz``."""
    return datetime.fromtimestamp(timestamp, tz).date().isoformat()


def next_reset(timestamp: float, tz: ZoneInfo) -> float:
    """The unix time of the next midnight in ``tz`` after ``timestamp``."""
    today = datetime.fromtimestamp(timestamp, tz).date()
    return datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz).timestamp()


class Ledger:
    """Points of one account's site, as the workers spend them."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        clock: Callable[[], float],
        account: Account | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.account = account or settings.account(None)
        self.site = self.account.site
        self.budget = self.account.daily_points

    def key(self, now: float | None = None) -> str:
        return keys.points(
            self.site, day_of(self.clock() if now is None else now, self.settings.tz)
        )

    def cap(self, lane: str) -> int:
        """What ``lane`` may spend today: -1 when no budget is set."""
        budget = self.budget
        if budget is None:
            return -1
        if lane == keys.REALTIME:
            return budget
        return math.floor(budget * (1 - self.settings.points_reserve))

    def claim(self, kind: str, lane: str) -> PointsClaim:
        settings = self.settings
        hold = settings.connect_timeout + settings.read_timeout + HOLD_SLACK_SECONDS
        return PointsClaim(
            self.key(),
            settings.point_costs.get(kind, 1),
            self.cap(lane),
            KEEP_SECONDS,
            int(hold * 1_000_000),
        )

    def settle(self, permit: Permit, success: bool) -> None:
        """Commit the reserved points of a request that succeeded; refund any other.

        One transaction, so it can be sent again after a lost connection: a refund removes
        the reservation at most once. (A success whose reply was lost after it ran would be
        counted twice: the ledger errs towards spending less, never more.)
        """
        claim = permit.claim
        if claim.cost <= 0:
            return
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(claim.reservations_key, permit.reservation)
            if success:
                pipe.hincrby(claim.key, "used", claim.cost)
                pipe.expire(claim.key, KEEP_SECONDS)
            pipe.execute()

    def mark_spent(self, claim: PointsClaim) -> None:
        """The API says the points are gone: nothing more is booked today."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(claim.key, "exhausted", "1")
            pipe.expire(claim.key, KEEP_SECONDS)
            pipe.execute()

    def reset_at(self) -> float:
        return next_reset(self.clock(), self.settings.tz)

    def today(self) -> dict[str, int | bool | None]:
        """Points used, reserved and left today (left is None without a budget)."""
        key = self.key()
        seconds, micros = self.client.time()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.zrangebyscore(
                keys.points_reservations(key), f"({seconds * 1_000_000 + micros}", "+inf"
            )
            raw, held = pipe.execute()
        used = int(raw.get("used", 0))
        reserved = sum(int(member.rsplit("/", 1)[1]) for member in held)
        budget = self.budget
        exhausted = raw.get("exhausted") == "1"
        left = None if budget is None else (0 if exhausted else max(0, budget - used - reserved))
        return {
            "budget": budget,
            "used": used,
            "reserved": reserved,
            "left": left,
            "exhausted": exhausted,
        }
