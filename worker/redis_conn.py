"""Where Redis is: ``REDIS_URL`` when set, else the embedded server in ``CTQ_DATA_DIR``."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import Settings
from worker import embedded_redis


def redis_url(settings: Settings) -> str:
    """The Redis URL every ctq process uses (starting the embedded server if needed)."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{embedded_redis.ensure_running(settings.data_dir)}"


def broker_url(url: str) -> str:
    """kombu spells unix sockets ``redis+socket://``; redis-py spells them ``unix://``."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def connect(settings: Settings, url: str | None = None, *, resend: bool = True) -> redis.Redis:
    """A client with string replies and timeouts, so a dead Redis fails fast and clearly.

    ``resend=False`` turns off redis-py's own retries: after a connection error it would send
    a transaction again that may already have run (a lost reply), and enqueue it twice. The
    producer asks Redis what happened instead.
    """
    extra = {} if resend else {"retry": Retry(NoBackoff(), 0)}
    return redis.Redis.from_url(
        url or redis_url(settings),
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        **extra,  # type: ignore[arg-type]
    )
