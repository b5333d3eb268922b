"""The durable delay set: jobs waiting longer than a worker should hold them, in Redis."""

from __future__ import annotations

import redis

from worker import keys


def park(pipe: redis.Redis, job_id: str, due_at: float) -> None:
    """Add ``job_id`` to the delay set, due at unix time ``due_at`` (caller's transaction)."""
    pipe.zadd(keys.DELAYED, {job_id: due_at})


def count(client: redis.Redis) -> int:
    return int(client.zcard(keys.DELAYED))
