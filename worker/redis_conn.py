"""Where Redis is: ``REDIS_URL`` when set, else the embedded server in ``CTQ_DATA_DIR``.

``REDIS_URL`` may name Redis Sentinels instead of one server, in kombu's own notation:
``sentinel://host1:26379;sentinel://host2:26379;sentinel://host3:26379/0``, the group in
CTQ_SENTINEL_MASTER. Celery (kombu's Sentinel transport) and ctq's own client then both ask
the sentinels for the current primary, and find the new one after a failover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from config import Settings
from worker import embedded_redis
from worker.errors import RedisUnavailable


def redis_url(settings: Settings) -> str:
    """The Redis URL every ctq process uses: ``REDIS_URL``, else the embedded server of the
    stack running in ``CTQ_DATA_DIR``. Only ``ctq up`` starts that server: a command run in
    the wrong directory must not get a fresh, empty Redis that no worker reads."""
    if settings.redis_url:
        return settings.redis_url
    if not embedded_redis.is_running(settings.data_dir):
        raise RedisUnavailable(
            f"no ctq stack in {settings.data_dir} (its embedded Redis is not running): start "
            "one with `make run` or `ctq up` in this directory, or set REDIS_URL"
        )
    return embedded_url(settings.data_dir)


def embedded_url(data_dir: Path) -> str:
    return f"unix://{embedded_redis.socket_path(data_dir)}"


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
    options = _options(None if resend else Retry(NoBackoff(), 0))
    url = url or redis_url(settings)
    if is_sentinel(url):
        nodes, db = sentinel_nodes(url)
        sentinels = Sentinel(nodes, **SENTINEL_TIMEOUTS)  # type: ignore[no-untyped-call]
        primary: redis.Redis = sentinels.master_for(settings.sentinel_master, db=db, **options)  # type: ignore[no-untyped-call]
        return primary
    return redis.Redis.from_url(url, **options)


def connect_async(settings: Settings, url: str) -> redis.asyncio.Redis:
    """``connect(settings, url, resend=False)`` for an event loop (redis.asyncio): the same
    replies, timeouts and Sentinel lookup, and no command sent twice. Connects when first used."""
    options = _options(AsyncRetry(NoBackoff(), 0))
    if is_sentinel(url):
        nodes, db = sentinel_nodes(url)
        sentinels = AsyncSentinel(nodes, **SENTINEL_TIMEOUTS)  # type: ignore[no-untyped-call]
        primary: redis.asyncio.Redis = sentinels.master_for(
            settings.sentinel_master, db=db, **options
        )
        return primary
    return redis.asyncio.Redis.from_url(url, **options)


SENTINEL_TIMEOUTS = {"socket_timeout": 5, "socket_connect_timeout": 5}


def _options(retry: Retry | AsyncRetry | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
    }
    if retry is not None:
        options["retry"] = retry
    return options


def is_sentinel(url: str) -> bool:
    return url.startswith("sentinel://")


def sentinel_nodes(url: str) -> tuple[list[tuple[str, int]], int]:
    """``sentinel://h1:26379;sentinel://h2:26380/0`` → ([(h1, 26379), (h2, 26380)], 0)."""
    nodes, db = [], 0
    for part in url.split(";"):
        parsed = urlsplit(part)
        nodes.append((parsed.hostname or "127.0.0.1", parsed.port or 26379))
        if parsed.path.strip("/"):
            db = int(parsed.path.strip("/"))
    return nodes, db
