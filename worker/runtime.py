"""What a task needs at run time, built once per worker process (after the prefork fork)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from celery import Celery

from config import Settings
from worker import keys
from worker.calltouch import CalltouchClient
from worker.ledger import Ledger
from worker.limiter import Limiter, limiter_key
from worker.redis_conn import connect


@dataclass
class Runtime:
    """One process's settings, clients, limiter and ledger; clock and sleep for tests.

    ``limiter`` is None in CTQ_LIMITER=celery-native mode (Celery's per-worker rate_limit
    instead; kept only to measure against).
    """

    settings: Settings
    redis: redis.Redis
    calltouch: CalltouchClient
    limiter: Limiter | None
    ledger: Ledger
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    pid: int = field(default_factory=os.getpid)


def build_limiter(settings: Settings, client: redis.Redis) -> Limiter:
    key = limiter_key(settings.egress_ip, settings.calltouch_api_url)
    client.sadd(keys.LIMITERS, key)
    return Limiter(client, key, settings.rate, margin=settings.limiter_margin_ms / 1000)


def build_runtime(settings: Settings, redis_url: str) -> Runtime:
    client = connect(settings, redis_url)
    client.sadd(keys.SITES, settings.calltouch_site_id or "-")
    shared = settings.limiter == "shared"
    return Runtime(
        settings=settings,
        redis=client,
        calltouch=CalltouchClient.from_settings(settings),
        limiter=build_limiter(settings, client) if shared else None,
        ledger=Ledger(client, settings, time.time),
    )


def runtime_of(app: Celery) -> Runtime:
    """This process's runtime for ``app`` (created by ``worker.celery_app.create_app``)."""
    runtime: Runtime | None = getattr(app, "ctq_runtime", None)
    # A forked pool child must not share the parent's sockets.
    if runtime is None or runtime.pid != os.getpid():
        runtime = build_runtime(app.ctq_settings, app.ctq_redis_url)  # type: ignore[attr-defined]
        app.ctq_runtime = runtime  # type: ignore[attr-defined]
    return runtime
