"""Sending while Redis fails over (Sentinel only): a request leaves only after its job's lease
is on the primary that survives.

In a failover the old primary keeps answering as a primary until the sentinels demote it:
about ten seconds after ``SENTINEL FAILOVER`` (they notice on their next round of INFO), and
for its first moments the sentinels still name it. Whatever it takes meanwhile is thrown
away when it joins the new primary: a job sent then and recorded done only there is sent
again by a worker of the new one. So right before a request leaves:

1. the sentinels are asked which server is the primary; connections to another server are
   dropped (idle ones at once, one in use when it is given back);
2. the job's lease is renewed there, and when that primary has a replica following it, the
   replica must confirm it has the renewal (``WAIT``). A replica being promoted no longer
   listens: the request is not sent, and the job tries again on the primary the sentinels
   name next, where its lease tells whether it is still this worker's to send. With no
   replica following (all down, or the old primary not yet demoted) there is nothing to
   confirm with, and the request goes.

What remains: a promotion while a request is in flight (its answer is then recorded on the
old primary and lost) can still send that one request twice."""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import SentinelConnectionPool

# How long a replica has to confirm the lease: on a healthy link it answers in about a round
# trip, so a primary that waits this long has lost its replica.
REPLICA_CONFIRM_MS = 500


class NotReplicated(redis.ConnectionError):
    """No replica confirmed the lease: Redis is failing over (a transient Redis error, so
    the job tries again on whichever server is the primary by then)."""

    def __init__(self) -> None:
        super().__init__(
            "no replica confirmed the job's lease within "
            f"{REPLICA_CONFIRM_MS} ms: Redis is failing over, nothing was sent"
        )


def replicas_to_confirm(client: redis.Redis) -> int:
    """Point ``client`` at the current primary; how many replicas must confirm a write before
    a request may leave: 1 with Sentinel and a replica following that primary, else 0."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return 0
    pool.get_master_address()  # type: ignore[no-untyped-call]  # drops connections elsewhere
    # The lookup put the sentinel that answered first in its list: ask it for the replicas
    # of the primary it named.
    sentinel = pool.sentinel_manager.sentinels[0]
    replicas = sentinel.sentinel_slaves(pool.service_name)
    return 1 if any(map(_replicating, replicas)) else 0


def _replicating(replica: dict[str, Any]) -> bool:
    """Whether the sentinel saw this replica up and following its primary when it last looked
    (a view a moment old errs on the safe side: the request waits for a confirmation). The
    old primary is listed as a replica of the new one from the start, but follows it only
    once demoted."""
    return (
        not (replica["is_sdown"] or replica["is_odown"])
        and replica.get("role-reported") == "slave"
        and replica.get("master-link-status") == "ok"
    )
