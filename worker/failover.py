"""Sending and enqueuing while Redis fails over (Sentinel only): a request leaves only after
its job's lease is on the primary that survives, and an enqueue is answered "accepted" only
after its jobs are.

In a failover the old primary keeps answering as a primary until the sentinels demote it:
about ten seconds after ``SENTINEL FAILOVER`` (they notice on their next round of INFO), and
for its first moments the sentinels still name it. Whatever it takes meanwhile is thrown
away when it joins the new primary: a job sent then and recorded done only there is sent
again by a worker of the new one. So right before a request leaves:

1. the sentinels are asked which server is the primary; connections to another server are
   dropped (idle ones at once, one in use when it is given back);
2. the job's lease is renewed there, and every replica following that primary must confirm
   it has the renewal (``WAIT``). A replica being promoted no longer listens: the request is
   not sent, and the job tries again on the primary the sentinels name next, where its lease
   tells whether it is still this worker's to send. With no replica following (all down, or
   the old primary not yet demoted) there is nothing to confirm with, and the request goes.

The price: a few sentinel round trips before each request, and a replica that lags more than
``REPLICA_CONFIRM_MS`` holds the requests (the job tries again until its time budget ends,
then its message is queued again), as a failover would.

An enqueue is fenced the same way (``run_confirmed``, ``tasks.batch``): the commit and a
``WAIT`` on one connection. Unconfirmed, the commit may be thrown away with the old primary's
writes, so its producer asks again, on the primary the sentinels name by then, whether its
receipt is there (``confirmed_read``): the jobs are enqueued, or nothing is.

What remains: a promotion while a request is in flight (its answer is then recorded on the
old primary and lost) can still send that one request twice."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.sentinel import SentinelConnectionPool

from worker.scripts import async_script, refusals_raised, script

# How long the replicas have to confirm the lease: on a healthy link they answer in about a
# round trip.
REPLICA_CONFIRM_MS = 500
UNCONFIRMED_WRITE = (
    f"the replicas did not confirm the write within {REPLICA_CONFIRM_MS} ms (Redis is "
    "failing over, or a replica lags)"
)


class NotReplicated(redis.ConnectionError):
    """The replicas did not confirm a write (a job's lease, an enqueue): Redis is failing
    over, or a replica lags (a transient Redis error: tried again on whichever server is the
    primary by then)."""

    def __init__(
        self,
        message: str = (
            f"the replicas did not confirm the job's lease within {REPLICA_CONFIRM_MS} ms "
            "(Redis is failing over, or a replica lags): nothing was sent"
        ),
    ) -> None:
        super().__init__(message)


def point_at_primary(client: redis.Redis) -> int:
    """Point ``client`` at the primary the sentinels name now; how many replicas follow it,
    each of which must confirm a write before a request may leave (without Sentinel: 0)."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return 0
    pool.get_master_address()  # type: ignore[no-untyped-call]  # drops connections elsewhere
    # The lookup put the sentinel that answered first in its list: ask it first for the
    # replicas of the primary it named.
    for sentinel in list(pool.sentinel_manager.sentinels):
        try:
            replicas = sentinel.sentinel_slaves(pool.service_name)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            continue
        return sum(map(_following, replicas))
    raise redis.ConnectionError("no sentinel named the replicas of the primary")


async def point_at_primary_async(client: redis.asyncio.Redis) -> int:
    """``point_at_primary`` for a redis.asyncio client."""
    pool = client.connection_pool
    if not isinstance(pool, AsyncSentinelConnectionPool):
        return 0
    await pool.get_master_address()  # type: ignore[no-untyped-call]
    for sentinel in list(pool.sentinel_manager.sentinels):
        try:
            replicas = await sentinel.sentinel_slaves(pool.service_name)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            continue
        return sum(map(_following, replicas))
    raise redis.ConnectionError("no sentinel named the replicas of the primary")


def confirmed(replies: list[Any], replicas: int) -> tuple[list[Any], bool]:
    """A pipeline's replies without its last, ``WAIT``'s; whether ``replicas`` confirmed. An
    error among the replies (``execute(raise_on_error=False)``) is raised as it came, not
    as the pipeline words it, which quotes the command."""
    for reply in replies:
        if isinstance(reply, Exception):
            with refusals_raised():
                raise reply
    *mine, count = replies
    return mine, int(count) >= replicas


def _writes(reply: Any) -> bool:
    return True


def _script_reply(replies: list[Any], replicas: int, wrote: Callable[[Any], bool]) -> Any:
    """The script's reply from a fenced pipeline (script, ``WAIT``); ``NotReplicated`` if it
    wrote and the replicas did not confirm."""
    (reply,), ok = confirmed(replies, replicas)
    if not ok and wrote(reply):
        raise NotReplicated(UNCONFIRMED_WRITE)
    return reply


def run_confirmed(
    client: redis.Redis,
    name: str,
    keys: Sequence[str],
    args: Sequence[Any],
    replicas: int,
    wrote: Callable[[Any], bool] = _writes,
) -> Any:
    """Run the script ``name``; with ``replicas`` > 0 they must all confirm its writes, or it
    raises ``NotReplicated`` (the writes may be lost with a primary that is being replaced).
    A reply ``wrote`` says wrote nothing (a refusal) needs no confirmation."""
    if replicas <= 0:
        return script(client, name)(keys=keys, args=args)
    with client.pipeline(transaction=False) as pipe:
        script(client, name)(keys=keys, args=args, client=pipe)
        pipe.wait(replicas, REPLICA_CONFIRM_MS)
        return _script_reply(pipe.execute(raise_on_error=False), replicas, wrote)


async def run_confirmed_async(
    client: redis.asyncio.Redis,
    name: str,
    keys: Sequence[str],
    args: Sequence[Any],
    replicas: int,
    wrote: Callable[[Any], bool] = _writes,
) -> Any:
    """``run_confirmed`` for a redis.asyncio client."""
    if replicas <= 0:
        return await async_script(client, name)(keys=keys, args=args)
    async with client.pipeline(transaction=False) as pipe:
        await async_script(client, name)(keys=keys, args=args, client=pipe)
        pipe.wait(replicas, REPLICA_CONFIRM_MS)
        return _script_reply(await pipe.execute(raise_on_error=False), replicas, wrote)


def confirmed_read(client: redis.Redis, key: str, ttl: int) -> str | None:
    """``key``'s value, read on the primary the sentinels name now. A value found there but
    not confirmed by its replicas (renewing its ``ttl`` is the write ``WAIT`` counts) may be
    on an old primary that is being replaced: ``NotReplicated``. None: there is none."""
    replicas = point_at_primary(client)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.expire(key, ttl)
        pipe.wait(replicas, REPLICA_CONFIRM_MS)
        (value, _), ok = confirmed(pipe.execute(), replicas)
    if value is not None and not ok:
        raise NotReplicated(UNCONFIRMED_WRITE)
    return None if value is None else str(value)


def _following(replica: dict[str, Any]) -> bool:
    """Whether the sentinel saw this replica up and following its primary when it last looked.
    One being promoted counts whatever it reports: it stops confirming, which holds the
    requests until the sentinels name it (a view a moment old errs on the safe side the same
    way). The old primary is listed as a replica of the new one from the start, but follows
    it only once demoted."""
    if replica["is_sdown"] or replica["is_odown"]:
        return False
    if "promoted" in str(replica["flags"]):
        return True
    return replica.get("role-reported") == "slave" and replica.get("master-link-status") == "ok"
