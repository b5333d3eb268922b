"""Jobs whose queue message was lost: found from their records and queued again.

A worker takes a message with ``BRPOP`` and only then records it among kombu's unacked
(``worker.broker``). When Redis stops or fails over between the two, the pop may be applied
(and written to the append-only file) while its reply never reaches the worker: the message
then exists nowhere, and its job stays "queued" with nothing left to run it. No change on
the consumer's side can close that gap, because the reply that never arrived was the only
copy.

The job record is the truth ctq keeps, so the sweep works from it: a job that still has to
run (queued, running, retrying), has been in that state for CTQ_LOST_MESSAGE_AFTER seconds,
holds no lease, is not in the delay set, and whose message is in no queue and not among the
unacked, has lost its message. It gets a new one at the head of its queue, in a transaction
that checks all of that again under ``WATCH``. The unacked are read before the queues and
again after, and the delay set before, so a message moving between them while the sweep
looks is seen; one caught in the instant between a worker's pop and its record can still be
queued twice. A spare copy sends nothing: a second worker finds the job leased, or no longer
queued (``worker.runner.run_job``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import redis

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from tasks.registry import KINDS
from worker import keys
from worker.jobstore import LIVE
from worker.messages import MessageBuilder
from worker.transactions import transact

log = logging.getLogger(__name__)

# A queue is read from its consuming end in chunks. Consecutive chunks overlap, so messages
# taken from that end between two reads (which moves every index) are not skipped.
CHUNK = 500
OVERLAP = 100
# Jobs enqueued together share a time, so the oldest candidates can lie anywhere in a long
# backlog; one sweep reads at most this many messages of a queue (about 3.5 ms per 1,000).
MAX_READ = 100_000
TASK_ID = re.compile(r'"id": ?"([^"]+)"')
# Every sweep looks at this many of the oldest jobs of each state (where a job lost in the
# last outage sits while a backlog drains), besides its page of the rest.
OLDEST = 100


@dataclass(frozen=True)
class Candidate:
    """A job that should have a message somewhere: on ``queue``, or among the unacked."""

    job_id: str
    task_name: str
    queue: str


def find_lost(
    client: redis.Redis, cutoff: float, limit: int = 1000, oldest: int = OLDEST
) -> list[Candidate]:
    """The jobs in a state that needs a message since before ``cutoff`` (unix time), with no
    message in their queue or among the unacked, holding no lease, not delayed.

    Each call looks at the ``oldest`` jobs of each state and at a page of ``limit`` more: the
    page after the last call's, from the oldest to the newest and around again, so a lost job
    behind a backlog of more than ``limit`` (a queued million-lead batch is 10,000 jobs) is
    found within a round of pages, not once the backlog has drained."""
    cursors: dict[str, str] = client.hgetall(keys.LOST_SWEEP_CURSOR)  # type: ignore[assignment]
    pages = {
        state: _page(client, state, cursors.get(state, ""), cutoff, limit, oldest) for state in LIVE
    }
    job_ids = list(dict.fromkeys(job_id for page in pages.values() for job_id in page.job_ids))
    # The unacked first: jobs being run leave the candidates before any queue is read.
    unacked = _unacked_jobs(client)
    candidates = [c for c in _candidates(client, job_ids) if c.job_id not in unacked]
    by_queue: dict[str, set[str]] = defaultdict(set)
    for candidate in candidates:
        by_queue[candidate.queue].add(candidate.job_id)
    missing: set[str] = set()
    for queue, queued_ids in by_queue.items():
        missing |= _not_in_queue(client, queue, queued_ids)
    if missing:
        # Again after the queues: a message taken from one meanwhile is recorded here by now.
        missing -= _unacked_jobs(client)
    lost = _needing_a_message(client, [c for c in candidates if c.job_id in missing])
    # Moved on only now: a page that an error (Redis failing over) kept from being checked
    # is read again by the next sweep.
    client.hset(
        keys.LOST_SWEEP_CURSOR, mapping={state: page.cursor for state, page in pages.items()}
    )
    return lost


def _unacked_jobs(client: redis.Redis) -> set[str | None]:
    unacked: list[str] = client.hvals(keys.KOMBU_UNACKED)  # type: ignore[assignment]
    return {_id_of_unacked(raw) for raw in unacked}


@dataclass(frozen=True)
class _Page:
    job_ids: list[str]
    cursor: str  # where the next page starts: after "SCORE JOB_ID"; "" for the oldest again


def _page(
    client: redis.Redis, state: str, after: str, cutoff: float, limit: int, oldest: int
) -> _Page:
    """The ``oldest`` jobs of ``state`` older than ``cutoff``, and ``limit`` more after the
    cursor ``after`` (or after the oldest, for a new round). The cursor is the last job seen,
    not a count: jobs ahead of it that leave the state (the backlog draining) do not make the
    next page jump over any."""
    index = keys.jobs_in(state)
    head: list[str] = client.zrangebyscore(index, "-inf", cutoff, 0, oldest) if oldest else []  # type: ignore[assignment]
    start = max(oldest, _rank_after(client, index, after) if after else 0)
    page: list[tuple[str, float]] = client.zrange(index, start, start + limit - 1, withscores=True)  # type: ignore[assignment]
    seen = [(job_id, score) for job_id, score in page if score <= cutoff]
    cursor = ""  # the page reached the newest job older than the cutoff: a new round next
    if len(seen) == limit:
        last_id, last_score = seen[-1]
        cursor = f"{last_score!r} {last_id}"
    return _Page(head + [job_id for job_id, _ in seen], cursor)


def _rank_after(client: redis.Redis, index: str, after: str) -> int:
    """The rank of the first job after ``after`` ("SCORE JOB_ID") in ``index``: the job's
    own rank + 1 while it is there with that score; else the first rank of its score (a job
    or a few may be looked at again; none is skipped)."""
    score_text, _, job_id = after.partition(" ")
    score = float(score_text)
    with client.pipeline(transaction=False) as pipe:
        pipe.zrank(index, job_id)
        pipe.zscore(index, job_id)
        pipe.zcount(index, "-inf", f"({score!r}")
        rank, current, lower = pipe.execute()
    if rank is not None and current == score:
        return int(rank) + 1
    return int(lower)


def _candidates(client: redis.Redis, job_ids: list[str]) -> list[Candidate]:
    """Those of ``job_ids`` whose record names a queue, except those in the delay set (read
    before the queues: the delay mover queues a job it takes from there)."""
    if not job_ids:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(keys.job(job_id), "kind", "account")
    pipe.zmscore(keys.DELAYED, job_ids)
    *records, due = pipe.execute()
    candidates = []
    for job_id, (kind_name, account), due_at in zip(job_ids, records, due, strict=True):
        kind = KINDS.get(str(kind_name))
        if kind is not None and due_at is None:  # no kind: the record expired or was purged
            queue = keys.queue(kind.lane, str(account or DEFAULT_ACCOUNT))
            candidates.append(Candidate(job_id, kind.task_name, queue))
    return candidates


def _needing_a_message(client: redis.Redis, candidates: list[Candidate]) -> list[Candidate]:
    """Those of ``candidates`` still to run, held by no worker and not waiting in the delay
    set (which gives them a message when they are due)."""
    if not candidates:
        return []
    pipe = client.pipeline(transaction=False)
    for candidate in candidates:
        pipe.hget(keys.job(candidate.job_id), "state")
        pipe.exists(keys.lease(candidate.job_id))
        pipe.zscore(keys.DELAYED, candidate.job_id)
    answers = pipe.execute()
    return [
        candidate
        for i, candidate in enumerate(candidates)
        if answers[3 * i] in LIVE and not answers[3 * i + 1] and answers[3 * i + 2] is None
    ]


def requeue_lost(
    client: redis.Redis, builder: MessageBuilder, lost: Iterable[Candidate], cutoff: float
) -> int:
    """Give each of ``lost`` a new message at the head of its queue, if it is still lost;
    return how many were queued."""
    queued = 0
    for candidate in lost:
        watched = (keys.job(candidate.job_id), keys.lease(candidate.job_id))
        body = partial(_requeue, candidate=candidate, builder=builder, cutoff=cutoff)
        if transact(client, body, *watched):
            log.warning(
                "job %s: its message was lost (in no queue and not among the unacked: taken "
                "by a worker when Redis stopped?); queued again at the head of %s",
                candidate.job_id,
                candidate.queue,
            )
            queued += 1
    return queued


def _not_in_queue(client: redis.Redis, queue: str, job_ids: set[str]) -> set[str]:
    """Those of ``job_ids`` with no message on ``queue``. Read from the end workers take
    from, where the oldest messages are, and only as far as needed to see them all."""
    missing = set(job_ids)
    end = -1
    while missing:
        if -end > MAX_READ:
            return set()  # nothing proven this time; the queue drains towards them
        chunk: list[str] = client.lrange(queue, end - CHUNK + 1, end)  # type: ignore[assignment]
        missing -= {_id_of_message(raw) for raw in chunk}
        if len(chunk) < CHUNK:
            break
        end -= CHUNK - OVERLAP
    return missing


def _id_of_message(raw: str) -> str | None:
    # The task id is the only key named exactly "id" in kombu's message (the body is base64,
    # the other ids are "root_id", "correlation_id", ...): found without parsing the whole
    # message, since a long backlog may be read every sweep in the worker's main process.
    found = TASK_ID.search(raw)
    if found:
        return found.group(1)
    try:
        return str(json.loads(raw)["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _id_of_unacked(raw: str) -> str | None:
    try:
        message, _exchange, _queue = json.loads(raw)
        return str(message["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _requeue(
    pipe: redis.client.Pipeline, candidate: Candidate, builder: MessageBuilder, cutoff: float
) -> int:
    job_id = candidate.job_id
    state = pipe.hget(keys.job(job_id), "state")
    if state not in LIVE or pipe.exists(keys.lease(job_id)):
        return 0  # settled, or a worker runs it
    since = pipe.zscore(keys.jobs_in(str(state)), job_id)
    if since is None or since > cutoff or pipe.zscore(keys.DELAYED, job_id) is not None:
        return 0  # it was queued again, or parked, meanwhile
    _lpush, (queue, message) = builder.message(candidate.task_name, job_id, candidate.queue)
    pipe.multi()
    pipe.rpush(queue, message)  # kombu consumes with BRPOP: the right end is taken next
    return 1


class LostMessageSweep:
    """Runs ``find_lost`` and ``requeue_lost`` once every ``every`` seconds across the whole
    cluster: every worker calls ``run_if_due`` often, and the first to take the turn (a key
    that lives ``every`` seconds) sweeps."""

    def __init__(
        self,
        client: redis.Redis,
        new_builder: Callable[[], MessageBuilder],
        lost_after: float,
    ) -> None:
        self.client = client
        self.new_builder = new_builder
        self.lost_after = lost_after
        self.every = lost_after / 3
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def run_if_due(self, now: float) -> int:
        """Sweep if no process has in the last ``every`` seconds; return how many jobs were
        queued again."""
        turn = self.client.set(
            keys.LOST_SWEEP, self.owner, nx=True, px=max(1, int(self.every * 1000))
        )
        if not turn:
            return 0
        cutoff = now - self.lost_after
        lost = find_lost(self.client, cutoff)
        if not lost:
            return 0
        builder = self.new_builder()
        try:
            return requeue_lost(self.client, builder, lost, cutoff)
        finally:
            builder.close()
