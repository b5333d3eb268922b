"""Moves jobs from the durable delay set back to their queue once they are due."""

from __future__ import annotations

import redis

from tasks.registry import KINDS
from worker import jobstore, keys
from worker.jobstore import State
from worker.messages import MessageBuilder


def move_due(client: redis.Redis, builder: MessageBuilder, now: float, batch: int = 500) -> int:
    """Requeue every job due by ``now``; return how many.

    Each batch is removed from the set and published in one transaction, under ``WATCH``:
    two movers never requeue the same job, and a crash never loses one.
    """
    moved = 0
    while True:
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(keys.DELAYED)
                due: list[str] = pipe.zrangebyscore(keys.DELAYED, "-inf", now, 0, batch)  # type: ignore[assignment]
                if not due:
                    return moved
                kinds = [pipe.hget(keys.job(job_id), "kind") for job_id in due]
                pipe.multi()
                for job_id, kind_name in zip(due, kinds, strict=True):
                    pipe.zrem(keys.DELAYED, job_id)
                    kind = KINDS.get(str(kind_name))
                    if kind is None:  # the record expired or was purged: nothing to send
                        continue
                    for name, args in builder.commands(kind.task_name, job_id, kind.lane):
                        getattr(pipe, name)(*args)
                    jobstore.transition(pipe, job_id, State.QUEUED, now=now)
                pipe.execute()
                moved += len(due)
            except redis.WatchError:
                continue
