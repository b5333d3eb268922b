"""What ``/metrics`` and the dashboard show, read from Redis in one pass: ``ctq status``'s own
overview plus the counters the workers keep (``worker.metrics``). Every read is of a known
key (a hash, a set, a list's head): the time does not grow with the number of jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from config import Settings
from worker import keys, metrics
from worker.metrics import Histogram
from worker.queue_age import waiting_since
from worker.status import Overview, overview


@dataclass(frozen=True)
class Snapshot:
    """The cluster as one read saw it; ``taken_at`` is this host's unix time."""

    overview: Overview
    requests_sent: dict[tuple[str, str, str], int]
    permit_waits: dict[str, Histogram]
    waiting_since: dict[str, float | None]
    taken_at: float

    def oldest_age(self, lane: str) -> float | None:
        """Seconds the job longest in line on ``lane`` (any account's queue) has waited (None:
        nothing waits)."""
        heads = [
            since
            for queue, since in self.waiting_since.items()
            if since is not None and keys.lane_of(queue) == lane
        ]
        return None if not heads else max(0.0, self.taken_at - min(heads))


def take(client: redis.Redis, settings: Settings) -> Snapshot:
    return Snapshot(
        overview=overview(client, settings),
        requests_sent=metrics.requests_sent(client),
        permit_waits=metrics.permit_waits(client),
        waiting_since=waiting_since(
            client, [q for lane in keys.LANES for q in keys.queues(lane, settings.accounts)]
        ),
        taken_at=time.time(),
    )


def limiter_key(name: str) -> str:
    """The Redis key of a limiter as ``ctq status`` names it (without the prefix)."""
    return f"{keys.PREFIX}:limiter:{name}"
