"""The Lua scripts ctq runs, read from ``worker/lua`` and registered once per client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script
from redis.exceptions import OutOfMemoryError, ReadOnlyError

# Redis 6 reports a write refused inside a script (a full Redis, a read-only replica) as a
# generic script error that only quotes the refusal; Redis 7 raises the refusal itself.
_REFUSALS = (("-OOM ", OutOfMemoryError), ("-READONLY ", ReadOnlyError))


@cache
def _source(name: str) -> str:
    return (resources.files("worker") / "lua" / f"{name}.lua").read_text()


@contextlib.contextmanager
def refusals_raised() -> Iterator[None]:
    """Raise a refusal a script's error only quotes as the refusal itself (around a script's
    call, or around the pipeline that ran it)."""
    try:
        yield
    except redis.ResponseError as exc:
        for quoted, refusal in _REFUSALS:
            if quoted in str(exc) and not isinstance(exc, refusal):
                raise refusal(str(exc)) from exc
        raise


class RefusalAwareScript(Script):
    """A script whose refused writes raise ``OutOfMemoryError`` or ``ReadOnlyError`` on every
    Redis version, so callers wait them out like the same refusal of a plain command."""

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        with refusals_raised():
            return super().__call__(keys, args, client)


class RefusalAwareAsyncScript(AsyncScript):
    """``RefusalAwareScript`` for redis.asyncio."""

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        with refusals_raised():
            return await super().__call__(keys, args, client)


def script(client: redis.Redis, name: str) -> Script:
    """The registered script ``name`` for ``client`` (one registration per client)."""
    registered: dict[str, Script] = client.__dict__.setdefault("_ctq_scripts", {})
    if name not in registered:
        registered[name] = RefusalAwareScript(client, _source(name))
    return registered[name]


def async_script(client: redis.asyncio.Redis, name: str) -> AsyncScript:
    """``script`` for a redis.asyncio client."""
    registered: dict[str, AsyncScript] = client.__dict__.setdefault("_ctq_scripts", {})
    if name not in registered:
        registered[name] = RefusalAwareAsyncScript(client, _source(name))
    return registered[name]
