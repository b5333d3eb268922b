"""The Lua scripts ctq runs, read from ``worker/lua`` and registered once per client."""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script


@cache
def _source(name: str) -> str:
    return (resources.files("worker") / "lua" / f"{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script:
    """The registered script ``name`` for ``client`` (one registration per client)."""
    registered: dict[str, Script] = client.__dict__.setdefault("_ctq_scripts", {})
    if name not in registered:
        registered[name] = client.register_script(_source(name))
    return registered[name]
