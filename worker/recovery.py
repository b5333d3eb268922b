"""Putting back the messages of jobs whose worker died, in seconds rather than at the
broker's visibility timeout.

kombu's Redis transport keeps every delivered, unacked message in the ``unacked`` hash (with
its delivery time in ``unacked_index``) and puts it back only after CTQ_VISIBILITY_TIMEOUT.
A running job holds a lease its worker's heartbeat renews every few seconds; an unacked job
message older than a short grace whose job holds no lease has lost its worker. This module
makes kombu's own move (``QoS.restore_by_tag``) for it now, in one transaction per message,
so two workers recovering at once never put a message back twice. The visibility timeout
stays as the backstop.

The same thread gives ``worker.lost_messages`` its turn: that sweep covers the other way a
job loses its message, a message taken from its queue and never recorded as unacked.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import redis
from kombu.exceptions import OperationalError

from tasks.registry import KINDS
from worker import keys
from worker.jobstore import LIVE
from worker.transactions import transact

log = logging.getLogger(__name__)

JOB_TASKS = frozenset(kind.task_name for kind in KINDS.values())


def recover_stalled(client: redis.Redis, now: float, grace: float) -> int:
    """Put back (or forget) every job message delivered more than ``grace`` seconds ago whose
    job holds no lease; return how many were put back."""
    tags = client.zrangebyscore(keys.KOMBU_UNACKED_INDEX, "-inf", now - grace)
    restored = 0
    for tag in tags:
        restored += transact(client, partial(_restore, tag=str(tag)), keys.KOMBU_UNACKED)
    return restored


def _restore(pipe: redis.client.Pipeline, tag: str) -> int:
    raw = pipe.hget(keys.KOMBU_UNACKED, tag)
    if not raw:
        return 0  # acked meanwhile
    message, _exchange, queue = json.loads(raw)
    headers: dict[str, Any] = message.get("headers") or {}
    if headers.get("task") not in JOB_TASKS:
        return 0  # maintenance ticks: the visibility timeout brings them back
    job_id = str(headers.get("id"))
    pipe.watch(keys.lease(job_id), keys.job(job_id))  # type: ignore[no-untyped-call]
    if pipe.exists(keys.lease(job_id)):
        return 0  # its worker is alive
    state = pipe.hget(keys.job(job_id), "state")
    pipe.multi()
    pipe.zrem(keys.KOMBU_UNACKED_INDEX, tag)
    pipe.hdel(keys.KOMBU_UNACKED, tag)
    if state not in LIVE:
        return 0  # its outcome is recorded elsewhere: the message is only forgotten
    headers["redelivered"] = True
    message.get("properties", {}).get("delivery_info", {})["redelivered"] = True
    # kombu consumes with BRPOP: the right end is the next message taken.
    pipe.rpush(queue, json.dumps(message))
    log.warning("job %s: its worker stopped; message put back on %s", job_id, queue)
    return 1


def start_recovering(
    client: redis.Redis,
    every: float,
    grace: float,
    lost_messages: Callable[[float], int] | None = None,
) -> threading.Thread:
    """A daemon thread in the worker's main process: recover stalled messages every ``every``
    seconds for as long as the worker runs, and offer ``lost_messages`` (the sweep for jobs
    whose message was lost, ``worker.lost_messages``) its turn as often."""

    def run() -> None:
        while True:
            for what, step in (
                ("stalled-job recovery", partial(recover_stalled, client, grace=grace)),
                ("lost-message sweep", lost_messages),
            ):
                if step is None:
                    continue
                try:
                    step(time.time())
                except (redis.RedisError, OperationalError) as exc:
                    log.warning("%s: Redis unavailable (%s)", what, exc)
                except Exception:  # a bug must not stop the thread: the next round may work
                    log.exception("%s failed", what)
            time.sleep(every)

    thread = threading.Thread(target=run, name="ctq-recovery", daemon=True)
    thread.start()
    return thread
