"""What ``ctq status`` reports, as plain data."""

from __future__ import annotations

from typing import Any

import redis

from worker import deadletter, jobstore, keys


def overview(client: redis.Redis) -> dict[str, Any]:
    """Queue depths, jobs in each state, and dead letters kept."""
    with client.pipeline(transaction=False) as pipe:
        for queue in (*keys.LANES, keys.MAINTENANCE):
            pipe.llen(queue)
        pipe.hlen(keys.KOMBU_UNACKED)
        *depths, in_flight = pipe.execute()
    return {
        "queues": dict(zip((*keys.LANES, keys.MAINTENANCE), depths, strict=True)),
        "in_flight": in_flight,
        "jobs": jobstore.counts(client),
        "dead_letters": deadletter.count(client),
    }


def job_detail(client: redis.Redis, job_id: str) -> dict[str, Any] | None:
    """One job: state, attempts, last outcome, and per-lead results for comments."""
    job = jobstore.load(client, job_id)
    if job is None:
        return None
    detail: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "lane": job.lane,
        "state": str(job.state),
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "last": job.last or None,
    }
    if job.kind == "comment":
        detail["leads"] = len(job.payload.get("comments", []))
        detail["lead_results"] = job.result
    return detail
