"""The heartbeat of one worker process: renews the leases of the jobs it runs, and tells
``ctq status`` that the process is alive and what it is doing."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis

from worker import keys
from worker.lease import Lease

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread beating every ``every`` seconds for as long as the process lives."""

    def __init__(self, client: redis.Redis, every: float) -> None:
        self.client = client
        self.every = every
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._leases: dict[str, Lease] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating (once; later calls do nothing)."""
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ctq-heartbeat", daemon=True)
                self._thread.start()

    def hold(self, lease: Lease) -> None:
        """Keep ``lease`` alive until ``drop``."""
        self.start()
        with self._guard:
            self._leases[lease.job_id] = lease

    def drop(self, lease: Lease) -> None:
        with self._guard:
            self._leases.pop(lease.job_id, None)

    def beat(self) -> None:
        """Renew every lease held, and record this process as alive."""
        with self._guard:
            leases = list(self._leases.values())
        for lease in leases:
            if not lease.renew():
                log.warning(
                    "job %s: its lease was lost; it will not be sent from here", lease.job_id
                )
        seen = {
            "host": self.name.split(":")[0],
            "pid": os.getpid(),
            "jobs": [lease.job_id for lease in leases],
        }
        self.client.hset(keys.WORKERS, self.name, json.dumps({**seen, "seen": time.time()}))

    def _run(self) -> None:
        while True:
            try:
                self.beat()
            except redis.RedisError as exc:
                log.warning("heartbeat: Redis unavailable (%s)", exc)
            time.sleep(self.every)


def alive(client: redis.Redis, within: float) -> list[dict[str, object]]:
    """Worker processes seen in the last ``within`` seconds (older entries are forgotten)."""
    now = time.time()
    found, stale = [], []
    for name, raw in client.hgetall(keys.WORKERS).items():
        entry = json.loads(raw)
        if now - entry["seen"] <= within:
            found.append(entry)
        else:
            stale.append(name)
    if stale:
        client.hdel(keys.WORKERS, *stale)
    return sorted(found, key=lambda e: (str(e["host"]), int(e["pid"])))
