"""One way to run a read-then-write transaction against concurrent writers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis

T = TypeVar("T")


def transact(client: redis.Redis, body: Callable[[redis.client.Pipeline], T], *watched: str) -> T:
    """Run ``body`` with ``watched`` under WATCH: it reads, calls ``pipe.multi()``, queues its
    writes, and they run all at once; if a watched key changed meanwhile, ``body`` runs again
    from the start (redis-py's ``Redis.transaction``). Returns what ``body`` returned."""
    run: Any = body  # redis-py types the callable as returning None
    return cast(T, client.transaction(run, *watched, value_from_callable=True))
