"""Riding out a Redis outage: retry a write until Redis is back, or until a deadline.

Used for everything between "the API answered" and "the outcome is recorded": an error there
must not lose the answer, or the job is sent again when its message is redelivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.exceptions import OutOfMemoryError, ReadOnlyError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis away (stopped, restarting, loading its AOF: BusyLoadingError is a ConnectionError),
# full (maxmemory with noeviction), or a replica during a failover: all pass by themselves.
# (The same refusals inside a Lua script raise these too: ``worker.scripts``.)
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, OutOfMemoryError, ReadOnlyError)


def ride_out(
    action: Callable[[], T],
    *,
    within: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``action``, again after each transient Redis error, for up to ``within`` seconds;
    then the last error is raised. ``action`` must be safe to run again after a failure."""
    deadline = time.monotonic() + within
    pause = 0.1
    while True:
        try:
            return action()
        except TRANSIENT as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("%s: Redis unavailable (%s); trying again in %.1f s", what, exc, pause)
            sleep(pause)
            pause = min(pause * 2, 1.0)
