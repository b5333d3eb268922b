"""The circuit breaker: account-level answers pause a site's lane instead of failing its jobs.

Bad credentials, no callback minutes, service disabled: every job of that site and lane would
fail the same way, so the breaker opens, the jobs are held (kept, not dead-lettered), and the
job that tripped it comes back as a probe after CTQ_BREAKER_PROBE_INTERVAL. A probe that gets
anything but an account-level answer closes the breaker and releases the held jobs;
``ctq resume`` does the same by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import redis

from worker import keys
from worker.outcome import LastOutcome
from worker.scripts import script


class Admission(StrEnum):
    """What an open or closed breaker says to a job about to be sent."""

    CLOSED = "closed"  # send
    PROBE = "probe"  # send: this job is the one probe of an open breaker
    HOLD = "hold"  # do not send: held until the breaker closes


# A run of unknown codes is forgotten after a quiet day.
STREAK_KEEP_SECONDS = 86400


class Breaker:
    """The breaker of one site and lane."""

    def __init__(self, client: redis.Redis, site: str, lane: str) -> None:
        self.client = client
        self.site = site
        self.lane = lane
        self.key = keys.breaker(site, lane)
        self.held_key = f"{self.key}:held"
        self.probe_key = f"{self.key}:probe"
        self.streak_key = f"{self.key}:unknown"

    def state(self) -> dict[str, Any] | None:
        """The open breaker's reason and times, or None when it is closed."""
        raw: dict[str, str] = self.client.hgetall(self.key)  # type: ignore[assignment]
        if not raw:
            return None
        return {
            "site": self.site,
            "lane": self.lane,
            "reason": raw.get("reason", ""),
            "code": raw.get("code") or None,
            "http_status": raw.get("http_status") or None,
            "since": float(raw["since"]),
            "probe_at": float(raw["probe_at"]),
            "held": int(self.client.zcard(self.held_key)),
        }

    def open(
        self, job_id: str, reason: str, verdict: LastOutcome, now: float, interval: float
    ) -> float | None:
        """Open the breaker; return when its probe (``job_id``) is due, or None if another job
        is the probe: this one is held like the rest."""
        probe_at = now + interval
        is_probe = script(self.client, "open_breaker")(
            keys=[self.key, self.probe_key, keys.BREAKERS],
            args=[
                job_id,
                reason,
                "" if verdict.code is None else verdict.code,
                verdict.http_status or "",
                now,
                probe_at,
            ],
        )
        return probe_at if is_probe else None

    def unknown_streak(self, unknown: bool) -> int:
        """Count answers with an unknown API code in a row (any other answer ends the run);
        return the length of the run."""
        if not unknown:
            self.client.delete(self.streak_key)
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(self.streak_key)
            pipe.expire(self.streak_key, STREAK_KEEP_SECONDS)
            streak, _ = pipe.execute()
        return int(streak)

    def admit(self, now: float, lease_ms: int) -> Admission:
        probe_at = self.client.hget(self.key, "probe_at")
        if probe_at is None:
            return Admission.CLOSED
        if now < float(probe_at):
            return Admission.HOLD
        if self.client.set(self.probe_key, "1", nx=True, px=lease_ms):
            return Admission.PROBE
        return Admission.HOLD

    def hold(self, pipe: redis.Redis, job_id: str, now: float) -> None:
        """Keep ``job_id`` until the breaker closes (in the caller's transaction)."""
        pipe.zadd(self.held_key, {job_id: now})

    def close(self, now: float) -> int:
        """Close the breaker and release every held job; return how many."""
        release = script(self.client, "release_held")
        keys_ = [
            self.key,
            self.held_key,
            self.probe_key,
            keys.DELAYED,
            self.streak_key,
            keys.BREAKERS,
        ]
        return int(release(keys=keys_, args=[now]))


def open_breakers(client: redis.Redis) -> list[dict[str, Any]]:
    """Every open breaker, for ``ctq status``: read from their set, never a scan of the keys
    (a breaker opened before the set existed joins it when its probe meets the wall again)."""
    found = []
    names: set[str] = client.smembers(keys.BREAKERS)  # type: ignore[assignment]
    for name in sorted(names):
        site, lane = str(name).removeprefix(f"{keys.PREFIX}:breaker:").rsplit(":", 1)
        state = Breaker(client, site, lane).state()
        if state:
            found.append(state)
    return found


def resume(
    client: redis.Redis, now: float, site: str | None = None, lane: str | None = None
) -> list[dict[str, Any]]:
    """Close the open breakers (all, or those of ``site`` / ``lane``) and requeue the jobs they
    held; each closed breaker's state with ``released``, how many jobs went back."""
    resumed = []
    for state in open_breakers(client):
        if site in (None, state["site"]) and lane in (None, state["lane"]):
            released = Breaker(client, state["site"], state["lane"]).close(now)
            resumed.append({**state, "released": released})
    return resumed
