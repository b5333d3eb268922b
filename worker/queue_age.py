"""How long the job next in line on each queue has waited: a few reads whatever the length."""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from worker import keys
from worker.jobstore import State


def waiting_since(
    client: redis.Redis, queues: Sequence[str] = keys.LANES
) -> dict[str, float | None]:
    """Per queue: when the job at its head (the next one a worker takes: kombu pushes on the
    left and pops on the right) entered the ``queued`` state, as unix time. None for an empty
    queue, or a head whose job is no longer queued (cancelled, or a redelivered copy)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.lindex(queue, -1)
        heads: list[str | None] = pipe.execute()
    job_ids = [_job_id(head) for head in heads]
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zscore(keys.jobs_in(State.QUEUED), job_id or "")
        since: list[float | None] = pipe.execute()
    return {
        queue: (entered if job_id else None)
        for queue, job_id, entered in zip(queues, job_ids, since, strict=True)
    }


def _job_id(message: str | None) -> str | None:
    """The task id of a kombu message (Celery's protocol 2: ``headers.id``), the job's id."""
    if message is None:
        return None
    try:
        job_id = json.loads(message)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(job_id) if job_id else None
