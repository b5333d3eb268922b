"""Dead letters: jobs that will not be sent again by themselves, with why."""

from __future__ import annotations

import json
from typing import Any

import redis

from worker import keys
from worker.redaction import redact


def add(pipe: redis.Redis, record: dict[str, Any], *, now: float) -> None:
    """Write ``record`` (keyed by its job id) in the caller's transaction."""
    record = redact(record)
    pipe.hset(keys.DLQ, record["id"], json.dumps(record, ensure_ascii=False))
    pipe.zadd(keys.DLQ_INDEX, {record["id"]: now})


def list_records(client: redis.Redis, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters, newest first."""
    if limit < 1:
        return []  # ZREVRANGE 0 -1 would be every one
    ids: list[str] = client.zrevrange(keys.DLQ_INDEX, 0, limit - 1)  # type: ignore[assignment]
    if not ids:
        return []
    raw: list[str | None] = client.hmget(keys.DLQ, ids)  # type: ignore[assignment]
    return [json.loads(item) for item in raw if item]


def get(client: redis.Redis, job_id: str) -> dict[str, Any] | None:
    raw = client.hget(keys.DLQ, job_id)
    return json.loads(raw) if raw else None


def count(client: redis.Redis) -> int:
    return int(client.zcard(keys.DLQ_INDEX))


def all_records(client: redis.Redis) -> list[dict[str, Any]]:
    return list_records(client, limit=count(client) or 1)


def remove(client: redis.Redis, job_ids: list[str]) -> int:
    """Delete these dead letters; return how many existed."""
    if not job_ids:
        return 0
    with client.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.DLQ, *job_ids)
        pipe.zrem(keys.DLQ_INDEX, *job_ids)
        removed, _ = pipe.execute()
    return int(removed)


def purge_older_than(client: redis.Redis, cutoff: float) -> int:
    """Delete dead letters recorded before ``cutoff`` (unix time); return how many."""
    old: list[str] = client.zrangebyscore(keys.DLQ_INDEX, "-inf", cutoff)  # type: ignore[assignment]
    if old:
        with client.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.DLQ, *old)
            pipe.zrem(keys.DLQ_INDEX, *old)
            pipe.execute()
    return len(old)
