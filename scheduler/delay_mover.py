"""Moves jobs from the durable delay set back to their queue once they are due."""

from __future__ import annotations

from functools import partial

import redis

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from tasks.registry import KINDS
from worker import jobstore, keys
from worker.jobstore import TERMINAL, State
from worker.messages import MessageBuilder
from worker.transactions import transact


def move_due(client: redis.Redis, builder: MessageBuilder, now: float, batch: int = 500) -> int:
    """Requeue every job due by ``now``; return how many.

    Each batch is removed from the set and published in one transaction, under ``WATCH``:
    two movers never requeue the same job, and a crash never loses one.
    """
    moved = 0
    while True:
        count = transact(
            client, partial(_move_batch, builder=builder, now=now, batch=batch), keys.DELAYED
        )
        if not count:
            return moved
        moved += count


def _move_batch(
    pipe: redis.client.Pipeline, builder: MessageBuilder, now: float, batch: int
) -> int:
    due: list[str] = pipe.zrangebyscore(keys.DELAYED, "-inf", now, 0, batch)  # type: ignore[assignment]
    if not due:
        return 0
    records = [pipe.hmget(keys.job(job_id), "kind", "state", "account") for job_id in due]
    pipe.multi()
    for job_id, (kind_name, state, account) in zip(due, records, strict=True):
        pipe.zrem(keys.DELAYED, job_id)
        kind = KINDS.get(str(kind_name))
        if kind is None or state in TERMINAL:  # expired, purged, or finished
            continue
        queue = keys.queue(kind.lane, str(account or DEFAULT_ACCOUNT))
        for name, args in builder.commands(kind.task_name, job_id, queue):
            getattr(pipe, name)(*args)
        # Not when it was parked behind another worker's lease: that one runs it.
        if state in (State.DELAYED, State.PAUSED):
            jobstore.transition(pipe, job_id, State.QUEUED, now=now)
    return len(due)
