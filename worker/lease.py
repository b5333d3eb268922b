"""Job leases: a short lock per running job that names its owner and only its owner renews
or releases (redis-py's ``Lock``: a token per holder, compare-and-act scripts).

A lease lives ``CTQ_LEASE_SECONDS`` and the process's heartbeat renews it while the job runs,
waits included. A process that dies or freezes lets it lapse within seconds; the stalled
message is then put back on its queue (``worker.recovery``) and another worker takes the job.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis
from redis.exceptions import LockError

from worker import keys
from worker.failover import REPLICA_CONFIRM_MS, NotReplicated, confirmed


class Lease:
    """The lease of one job, held by this process."""

    def __init__(self, client: redis.Redis, job_id: str, seconds: float) -> None:
        self.job_id = job_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{job_id}:{uuid.uuid4().hex[:8]}"
        # Not thread-local: the heartbeat thread renews what the job's thread acquired.
        self._lock = client.lock(keys.lease(job_id), timeout=seconds, thread_local=False)
        self.lost = False

    @property
    def name(self) -> str:
        return str(self._lock.name)

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False, token=self.owner))

    def renew(self, replicas: int = 0) -> bool:
        """Extend the lease to its full length again, if it is still ours. With ``replicas``
        > 0, that many replicas must confirm the renewal (``worker.failover``), or it raises
        ``NotReplicated``: one connection carries both, as ``WAIT`` counts only the writes
        of its own connection."""
        token = self._lock.local.token
        if replicas <= 0 or self.lost or token is None:
            try:
                self._lock.reacquire()
            except LockError:
                self.lost = True
            return not self.lost
        with self._lock.redis.pipeline(transaction=False) as pipe:
            timeout_ms = int(float(self._lock.timeout or 0) * 1000)
            self._lock.lua_reacquire(keys=[self.name], args=[token, timeout_ms], client=pipe)
            pipe.wait(replicas, REPLICA_CONFIRM_MS)
            (owned,), ok = confirmed(pipe.execute(), replicas)
        if not owned:
            self.lost = True
            return False
        if not ok:
            raise NotReplicated
        return True

    def release(self) -> None:
        """Give the lease back; raises ``LockError`` if it lapsed and another holder has it."""
        self._lock.release()
