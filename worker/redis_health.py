"""Is this Redis safe for ctq? Eviction would drop queued jobs without a word.

Under ``maxmemory`` with any policy but ``noeviction``, Redis deletes keys to make room: a
queue list, a job record, a dead letter. ctq refuses to run on such a Redis unless the
operator says otherwise (CTQ_ALLOW_EVICTION). A full Redis under ``noeviction`` refuses
writes instead: producers report it, workers wait until there is room.
"""

from __future__ import annotations

from typing import Any

import redis

from config import Settings
from worker.errors import CtqError


class EvictingRedis(CtqError):
    """Redis may evict ctq's keys (its maxmemory-policy is not noeviction)."""


def memory(client: redis.Redis) -> dict[str, Any]:
    """Used and maximum memory (0: no limit), the eviction policy, and whether it is full."""
    info: dict[str, Any] = client.info("memory")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    return {
        "used_bytes": used,
        "max_bytes": limit,
        "policy": str(info.get("maxmemory_policy", "noeviction")),
        "full": bool(limit) and used >= limit,
    }


def refuse_eviction(client: redis.Redis, settings: Settings) -> None:
    """Raise ``EvictingRedis`` unless Redis keeps every key (or the operator allowed it)."""
    if settings.allow_eviction:
        return
    policy = memory(client)["policy"]
    if policy != "noeviction":
        raise EvictingRedis(
            f"Redis is configured with maxmemory-policy {policy}: when it fills up it deletes "
            "keys, and queued jobs would be lost without a word. Set maxmemory-policy "
            "noeviction (in redis.conf, or CONFIG SET maxmemory-policy noeviction); to run "
            "anyway, set CTQ_ALLOW_EVICTION=true"
        )


def describe_full(exc: Exception) -> str:
    return f"Redis is full ({exc}): it refuses writes until memory is freed or maxmemory is raised"
