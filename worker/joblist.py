"""Jobs by state and kind, newest first (``ctq jobs``), read from each state's index."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import redis

from worker import keys
from worker.jobstore import State

FIELDS = ("kind", "lane", "state", "attempts", "created_at", "updated_at", "last")


@dataclass(frozen=True)
class JobSummary:
    """One line of ``ctq jobs``: where a job stands, and when it is due if it waits."""

    id: str
    kind: str
    lane: str
    state: str
    attempts: int
    created_at: float
    updated_at: float
    due_at: float | None  # in the durable delay set (scheduled, parked, released by a breaker)
    last: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_jobs(
    client: redis.Redis,
    states: Iterable[State] | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[JobSummary]:
    """The ``limit`` jobs that most recently entered one of ``states`` (every state if None),
    of ``kind`` if given, newest first."""
    page = min(max(limit, 20), 500)
    streams = [_in_state(client, state, kind, page) for state in states or State]
    newest_first = heapq.merge(*streams, key=lambda entry: -entry[0])
    return [summary for _, summary in itertools.islice(newest_first, limit)]


def _in_state(
    client: redis.Redis, state: State, kind: str | None, page: int
) -> Iterator[tuple[float, JobSummary]]:
    """The jobs of one state's index, newest first, a page at a time."""
    for start in itertools.count(0, page):
        entries: list[tuple[str, float]] = client.zrevrange(  # type: ignore[assignment]
            keys.jobs_in(state), start, start + page - 1, withscores=True
        )
        if not entries:
            return
        summaries = _read(client, [job_id for job_id, _ in entries])
        for (_, entered), summary in zip(entries, summaries, strict=True):
            # Expired (the index forgets it when the next job of that state finishes), or
            # moved to another state since the index was read.
            if summary is None or summary.state != state:
                continue
            if kind is None or summary.kind == kind:
                yield entered, summary


def _read(client: redis.Redis, job_ids: list[str]) -> list[JobSummary | None]:
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), FIELDS)
        pipe.zmscore(keys.DELAYED, job_ids)
        *records, due = pipe.execute()
    return [
        _summary(job_id, dict(zip(FIELDS, values, strict=True)), due_at)
        for job_id, values, due_at in zip(job_ids, records, due, strict=True)
    ]


def _summary(job_id: str, raw: dict[str, str | None], due_at: float | None) -> JobSummary | None:
    if raw["state"] is None or raw["kind"] is None:
        return None
    return JobSummary(
        id=job_id,
        kind=raw["kind"],
        lane=raw["lane"] or "",
        state=raw["state"],
        attempts=int(raw["attempts"] or 0),
        created_at=float(raw["created_at"] or 0),
        updated_at=float(raw["updated_at"] or 0),
        due_at=due_at,
        last=json.loads(raw["last"]) if raw["last"] else None,
    )
