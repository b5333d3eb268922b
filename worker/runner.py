"""Running one job: the plain function behind every Celery task."""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject

from tasks.kind import JobKind
from worker import deadletter, delays, jobstore
from worker.decision import Action, Step, decide
from worker.jobstore import TERMINAL, Job, State
from worker.outcome import Verdict, classify
from worker.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)


def execute(app: Celery, kind: JobKind, job_id: str) -> str | None:
    """The body of every job task: run the job; never lose it to an error of our own.

    Redis trouble requeues the message (the job is intact and will run again); any other
    exception is a bug, and the job is dead-lettered with it rather than retried forever.
    """
    rt = runtime_of(app)
    try:
        return run_job(rt, kind, job_id)
    except redis.RedisError as exc:
        log.warning("job %s: Redis error, message requeued: %s", job_id, exc)
        time.sleep(1.0)  # do not spin while Redis is away
        raise Reject(str(exc), requeue=True) from exc
    except Exception as exc:
        log.exception("job %s: internal error; dead-lettered", job_id)
        job = jobstore.load(rt.redis, job_id)
        if job is not None:
            failure = {
                "policy": "internal",
                "reason": "internal error in ctq",
                "outcome": "dead",
                "http_status": None,
                "code": None,
                "message": f"{type(exc).__name__}: {exc}"[:500],
            }
            _dead_letter(rt, job, failure, job.attempts)
        return State.DEAD


def run_job(rt: Runtime, kind: JobKind, job_id: str) -> str | None:
    """Send job ``job_id`` until it is done, dead-lettered or parked; return its new state.

    A message for a job that is already done or dead (a redelivery after the result was
    recorded) sends nothing.
    """
    job = jobstore.load(rt.redis, job_id)
    if job is None:
        log.warning("job %s not found (expired or purged); message dropped", job_id)
        return None
    if job.state in TERMINAL:
        log.info("job %s is already %s; not sent again", job_id, job.state)
        return job.state
    while True:
        begun = jobstore.transition(rt.redis, job_id, State.RUNNING, attempt=True, now=rt.clock())
        attempt = begun[1] if begun else job.attempts + 1
        verdict = classify(rt.calltouch.post(kind.path, job.payload))
        step = decide(verdict, attempt, rt.settings, rt.rng)
        log.info(
            "job %s %s attempt %d: %s %s -> %s",
            job_id,
            kind.name,
            attempt,
            verdict.key,
            verdict.message[:200],
            step.action,
        )
        if step.action is not Action.WAIT:
            return _settle(rt, kind, job, verdict, step, attempt)
        last = verdict.describe()
        jobstore.transition(rt.redis, job_id, State.RETRYING, now=rt.clock(), last=last)
        rt.sleep(step.delay)


def _settle(
    rt: Runtime, kind: JobKind, job: Job, verdict: Verdict, step: Step, attempt: int
) -> str:
    now = rt.clock()
    last = verdict.describe()
    if step.action is Action.FINISH:
        jobstore.transition(
            rt.redis,
            job.id,
            State.DONE,
            keep_seconds=_keep(rt),
            now=now,
            last=last,
            result=kind.results(verdict.body),
        )
        return State.DONE
    if step.action is Action.DEAD_LETTER:
        _dead_letter(rt, job, {**last, "policy": verdict.key, "reason": step.reason}, attempt)
        return State.DEAD
    with rt.redis.pipeline(transaction=True) as pipe:
        delays.park(pipe, job.id, now + step.delay)
        jobstore.transition(
            pipe, job.id, State.DELAYED, now=now, last=last, due_at=now + step.delay
        )
        pipe.execute()
    return State.DELAYED


def _dead_letter(rt: Runtime, job: Job, failure: dict[str, Any], attempts: int) -> None:
    """Record the dead letter and mark the job dead, in one transaction."""
    now = rt.clock()
    record = {
        "id": job.id,
        "kind": job.kind,
        "lane": job.lane,
        "payload": job.payload,
        **failure,
        "attempts": attempts,
        "created_at": job.created_at,
        "dead_at": now,
    }
    last = {k: failure[k] for k in ("outcome", "reason", "http_status", "code", "message")}
    with rt.redis.pipeline(transaction=True) as pipe:
        deadletter.add(pipe, record, now=now)
        jobstore.transition(pipe, job.id, State.DEAD, keep_seconds=_keep(rt), now=now, last=last)
        pipe.execute()


def _keep(rt: Runtime) -> int:
    return rt.settings.job_retention_days * 86400
