"""Recording where a job ends up after an attempt: done, dead letter, parked, or held.

Each is one Redis transaction, and safe to send again after a lost connection (the runner
does, while it rides out an outage): the job lands in the same place.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tasks.kind import JobKind
from worker import deadletter, delays, jobstore
from worker.breaker import Breaker
from worker.jobstore import Job, State
from worker.outcome import LastOutcome, Verdict
from worker.runtime import Runtime

log = logging.getLogger(__name__)


def done(rt: Runtime, kind: JobKind, job: Job, verdict: Verdict) -> str:
    """The API accepted the job: keep its answer (per-lead results for comments)."""
    jobstore.transition(
        rt.redis,
        job.id,
        State.DONE,
        attempt=True,
        keep_seconds=keep_seconds(rt),
        now=rt.clock(),
        last=verdict.describe(),
        result=kind.results(verdict.body),
    )
    log_outcome(job, "done", verdict.describe())
    return State.DONE


def hold(rt: Runtime, job: Job, breaker: Breaker) -> str:
    """Keep the job, paused, until the breaker of its site and lane closes."""
    now = rt.clock()
    last = no_answer("pause", "breaker open", f"{job.lane} lane of site {breaker.site} is paused")
    with rt.redis.pipeline(transaction=True) as pipe:
        breaker.hold(pipe, job.id, now)
        jobstore.transition(pipe, job.id, State.PAUSED, now=now, last=last)
        pipe.execute()
    log_outcome(job, "paused", last, last.message)
    return State.PAUSED


def park(
    rt: Runtime,
    job: Job,
    due_at: float,
    why: str,
    *,
    attempt: bool = False,
    last: LastOutcome | None = None,
    reason: str = "",
) -> str:
    """Move the job to the durable delay set until ``due_at``; beat requeues it then."""
    last = last or no_answer("retry", reason, why)
    with rt.redis.pipeline(transaction=True) as pipe:
        delays.park(pipe, job.id, due_at)
        jobstore.transition(
            pipe, job.id, State.DELAYED, attempt=attempt, now=rt.clock(), last=last, due_at=due_at
        )
        pipe.execute()
    # A probe parked while its lane is paused is, to the reader, a paused job.
    outcome = "paused" if last.outcome == "pause" else "delayed"
    log_outcome(job, outcome, last, f"{why}; until {_when(due_at)}")
    return State.DELAYED


def requeued(rt: Runtime, job: Job, why: str) -> None:
    """The job is queued again (its message goes back on its queue: the caller's part)."""
    last = no_answer("retry", "limiter", why)
    jobstore.transition(rt.redis, job.id, State.QUEUED, now=rt.clock(), last=last)
    log_outcome(job, "requeued", last, why)


def no_answer(outcome: str, reason: str, message: str) -> LastOutcome:
    """The ``last`` record of a step that was not an answer of the API."""
    return LastOutcome(outcome, reason, message=message)


def dead_letter(
    rt: Runtime, job: Job, failure: dict[str, Any], attempts: int, *, count_attempt: bool
) -> str:
    """Mark the job dead and record its dead letter, in one transaction."""
    now = rt.clock()
    record = {
        "id": job.id,
        "kind": job.kind,
        "lane": job.lane,
        "account": job.account,
        "payload": job.payload,
        **failure,
        "attempts": attempts,
        "created_at": job.created_at,
        "dead_at": now,
    }
    last = {k: failure[k] for k in ("outcome", "reason", "http_status", "code", "message")}
    with rt.redis.pipeline(transaction=True) as pipe:
        deadletter.add(pipe, record, now=now)
        jobstore.transition(
            pipe,
            job.id,
            State.DEAD,
            attempt=count_attempt,
            keep_seconds=keep_seconds(rt),
            now=now,
            last=last,
        )
        pipe.execute()
    answer = LastOutcome("dead", str(failure.get("policy", "")), last["http_status"], last["code"])
    log_outcome(job, "dead", answer, str(failure["reason"]))
    return State.DEAD


def log_outcome(job: Job, outcome: str, last: LastOutcome, why: str = "") -> None:
    """The one INFO line of a job's outcome: its id, kind, outcome, what the API answered
    (the policy's name for it, HTTP status, code) and why. Never the payload nor the API's
    free text: either may quote personal data."""
    answer = " ".join(
        part
        for part in (
            last.reason,
            f"HTTP {last.http_status}" if last.http_status else "",
            f"code {last.code}" if last.code is not None else "",
        )
        if part
    )
    log.info(
        "job %s %s %s: %s%s",
        job.id,
        job.kind,
        outcome,
        answer,
        f" ({why})" if why else "",
        extra={
            "job_id": job.id,
            "kind": job.kind,
            "outcome": outcome,
            "reason": why or last.reason,
            "http_status": last.http_status,
            "code": last.code,
        },
    )


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def keep_seconds(rt: Runtime) -> int:
    return rt.settings.job_retention_days * 86400
