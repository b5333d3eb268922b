"""Job records in Redis: what each job is, where it stands, and what the API answered."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis
from redis.typing import EncodableT

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from worker import keys
from worker.outcome import LastOutcome
from worker.scripts import script


class State(StrEnum):
    """Where a job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DELAYED = "delayed"
    PAUSED = "paused"  # held by an open circuit breaker
    DONE = "done"
    DEAD = "dead"
    CANCELLED = "cancelled"  # by ``ctq cancel``, before it was sent


TERMINAL = frozenset({State.DONE, State.DEAD, State.CANCELLED})
# The job still has to run, and a message on its queue (or among kombu's unacked) is what
# runs it. In any other state (done, dead, delayed, paused) it needs no message.
LIVE = frozenset({State.QUEUED, State.RUNNING, State.RETRYING})
# Each state's index of its jobs (``keys.jobs_in``), kept by every write of a job's state.
INDEXES = {state: keys.jobs_in(state) for state in State}


@dataclass
class Job:
    """A job as stored: its body as the API receives it, and its progress."""

    id: str
    kind: str
    lane: str
    payload: dict[str, Any]
    state: State
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    account: str = DEFAULT_ACCOUNT

    @property
    def queue(self) -> str:
        """The Celery queue its message goes on."""
        return keys.queue(self.lane, self.account)


def new_fields(
    kind: str, lane: str, payload: dict[str, Any], now: float, account: str = DEFAULT_ACCOUNT
) -> dict[EncodableT, EncodableT]:
    """The hash a new job starts with (written by the producer in its enqueue transaction).
    A job of the default account has no ``account`` field (records from before accounts)."""
    fields: dict[EncodableT, EncodableT] = {
        "kind": kind,
        "lane": lane,
        "payload": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        "state": State.QUEUED,
        "attempts": "0",
        "created_at": f"{now:.6f}",
        "updated_at": f"{now:.6f}",
    }
    if account != DEFAULT_ACCOUNT:
        fields["account"] = account
    return fields


def load(client: redis.Redis, job_id: str) -> Job | None:
    data: dict[str, str] = client.hgetall(keys.job(job_id))  # type: ignore[assignment]
    if not data:
        return None
    return Job(
        id=job_id,
        kind=data["kind"],
        lane=data["lane"],
        payload=json.loads(data["payload"]),
        state=State(data["state"]),
        attempts=int(data.get("attempts", 0)),
        created_at=float(data["created_at"]),
        updated_at=float(data["updated_at"]),
        last=json.loads(data["last"]) if "last" in data else {},
        result=json.loads(data["result"]) if "result" in data else None,
        account=data.get("account", DEFAULT_ACCOUNT),
    )


def transition(
    client: redis.Redis,
    job_id: str,
    state: State,
    *,
    attempt: bool = False,
    keep_seconds: int = 0,
    now: float | None = None,
    **values: Any,
) -> tuple[str, int] | None:
    """Move ``job_id`` to ``state`` (counting an attempt if asked); JSON-encode ``values``.

    ``client`` may be a transaction pipeline, to move the job together with other writes.
    Returns the previous state and attempt count, or None when the job does not exist. A
    cancelled job is left as it is (the previous state returned is ``cancelled``).
    """
    pairs: list[str] = []
    for name, value in values.items():
        if isinstance(value, LastOutcome):
            value = value.as_dict()
        pairs += [name, json.dumps(value, ensure_ascii=False, separators=(",", ":"))]
    stamp = f"{now or time.time():.6f}"
    args: list[str | int] = [state, stamp, int(attempt), keep_seconds, job_id, *pairs]
    answer = script(client, "transition")(
        keys=[keys.job(job_id), keys.STATS, *INDEXES.values()], args=args
    )
    if answer is None or isinstance(answer, redis.client.Pipeline):
        return None
    return answer[0], int(answer[1])


def state_of(client: redis.Redis, job_id: str) -> State | None:
    raw = client.hget(keys.job(job_id), "state")
    return None if raw is None else State(raw)  # type: ignore[arg-type]


def counts(client: redis.Redis, account: str | None = None) -> dict[str, int]:
    """Number of jobs in each state (done and dead count every job ever finished), of every
    account or of ``account`` (counted since ctq knew accounts)."""
    stats = keys.STATS if account is None else keys.account_stats(account)
    raw: dict[str, str] = client.hgetall(stats)  # type: ignore[assignment]
    return state_counts(raw)


def state_counts(raw: dict[str, str]) -> dict[str, int]:
    """A stats hash as read (state -> count) with every state, none below zero."""
    return {state.value: max(0, int(raw.get(state.value, 0))) for state in State}
