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
from worker.calltouch import CalltouchClient
from worker.redis_conn import connect


@dataclass
class Runtime:
    """Settings, the Redis client and the API client of one process; clock and sleep for tests."""

    settings: Settings
    redis: redis.Redis
    calltouch: CalltouchClient
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    pid: int = field(default_factory=os.getpid)


def build_runtime(settings: Settings, redis_url: str) -> Runtime:
    return Runtime(
        settings=settings,
        redis=connect(settings, redis_url),
        calltouch=CalltouchClient.from_settings(settings),
    )


def runtime_of(app: Celery) -> Runtime:
    """This process's runtime for ``app`` (created by ``worker.celery_app.create_app``)."""
    runtime: Runtime | None = getattr(app, "ctq_runtime", None)
    # A forked pool child must not share the parent's sockets.
    if runtime is None or runtime.pid != os.getpid():
        runtime = build_runtime(app.ctq_settings, app.ctq_redis_url)  # type: ignore[attr-defined]
        app.ctq_runtime = runtime  # type: ignore[attr-defined]
    return runtime
