"""Cancelling jobs before they are sent: queued, scheduled or parked, held by a breaker, or
waiting to retry. A cancelled job is never sent afterwards: a worker that takes its message
finds it cancelled, and a worker already holding it checks again in the same step that marks
it running (``transition.lua`` leaves a cancelled job as it is)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

import redis

from worker import jobstore, keys
from worker.breaker import Breaker, open_breakers
from worker.errors import CtqError, NotFound
from worker.jobstore import TERMINAL, State
from worker.records import no_answer
from worker.transactions import transact


class NotCancellable(CtqError):
    """The job is being sent right now, or has finished: there is nothing left to cancel."""


def cancel_jobs(
    client: redis.Redis, job_ids: Iterable[str], *, now: float, keep_seconds: int
) -> Iterator[tuple[str, State | CtqError]]:
    """Cancel each job; yield its id with the state it was in (``cancelled`` if it was
    already), or with why it could not be cancelled (``NotFound``, ``NotCancellable``)."""
    held = [Breaker(client, b["site"], b["lane"]).held_key for b in open_breakers(client)]
    for job_id in job_ids:
        try:
            was = transact(
                client,
                partial(_cancel, job_id=job_id, held=held, now=now, keep_seconds=keep_seconds),
                keys.job(job_id),
                keys.lease(job_id),
            )
        except (NotFound, NotCancellable) as refused:
            yield job_id, refused
        else:
            yield job_id, was


def _cancel(
    pipe: redis.client.Pipeline, job_id: str, held: list[str], now: float, keep_seconds: int
) -> State:
    raw = pipe.hget(keys.job(job_id), "state")
    if raw is None:
        raise NotFound(f"no job {job_id} (unknown, or expired after the retention period)")
    state = State(raw)  # type: ignore[arg-type]
    if state is State.CANCELLED:
        return state
    if state in TERMINAL:
        raise NotCancellable(f"job {job_id} is {state} already: too late to cancel")
    if state is State.RUNNING and pipe.exists(keys.lease(job_id)):
        raise NotCancellable(f"job {job_id} is running (a worker has it): too late to cancel")
    pipe.multi()
    pipe.zrem(keys.DELAYED, job_id)
    for held_key in held:
        pipe.zrem(held_key, job_id)
    last = no_answer("cancelled", "cancelled", f"cancelled by `ctq cancel` while {state}")
    jobstore.transition(
        pipe, job_id, State.CANCELLED, keep_seconds=keep_seconds, now=now, last=last
    )
    return state
