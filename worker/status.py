"""What ``ctq status`` reports, as plain data."""

from __future__ import annotations

import time
from typing import Any

import limits
import redis

from config import Settings
from worker import deadletter, jobstore, keys
from worker.breaker import open_breakers
from worker.heartbeat import alive
from worker.ledger import Ledger
from worker.limiter import Limiter, limiter_key
from worker.redis_health import memory

# A worker process beats every CTQ_LEASE_SECONDS / 3; silent this long, it is gone.
WORKER_SILENT_AFTER = 15.0


def overview(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Queue depths, jobs in each state, dead letters, every limiter key, points today."""
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
        "limiters": limiters(client, settings),
        "points_today": points_today(client, settings),
        "paused": open_breakers(client),
        "staged_leads": int(client.llen(keys.STAGED_COMMENTS)),
        "beat_last_tick": float(client.get(keys.BEAT_TICK) or 0) or None,
        "workers": alive(client, within=WORKER_SILENT_AFTER),
        "redis": memory(client),
    }


def points_today(client: redis.Redis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per site a worker has sent for: points used, reserved and left today."""
    sites: set[str] = client.smembers(keys.SITES)  # type: ignore[assignment]
    return {site: Ledger(client, settings, time.time, site).today() for site in sorted(sites)}


def limiters(client: redis.Redis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per limiter key: permits in the current window, booked ahead, waiters, 429s, pause."""
    margin = settings.limiter_margin_ms / 1000
    pozvonim = limiter_key(settings.egress_ip, settings.pozvonim_api_url)
    names: set[str] = client.smembers(keys.LIMITERS)  # type: ignore[assignment]
    shown = {}
    for name in sorted(names):
        rate = limits.parse(settings.pozvonim_rate_limit) if name == pozvonim else settings.rate
        snapshot = Limiter(client, name, rate, margin=margin).snapshot()
        shown[name.removeprefix(f"{keys.PREFIX}:limiter:")] = snapshot
    return shown


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
