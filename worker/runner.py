"""Running one job: the plain function behind every Celery task."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import redis
from celery import Celery
from celery.exceptions import Reject

from config.policy import Outcome
from tasks.kind import JobKind
from worker import deadletter, delays, jobstore, keys
from worker.breaker import HOLD, PROBE, Breaker
from worker.decision import Action, Step, decide
from worker.jobstore import TERMINAL, Job, State
from worker.limiter import PointsClaim
from worker.outcome import Verdict, classify
from worker.runtime import Channel, Runtime, channel, runtime_of

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
            _dead_letter(rt, job, failure, job.attempts, count_attempt=False)
        return State.DEAD


def run_job(rt: Runtime, kind: JobKind, job_id: str) -> str | None:
    """Send job ``job_id`` until it is done, dead-lettered or parked; return its new state.

    Every request first takes a permit from the shared limiter. A message for a job that is
    already done or dead (a redelivery after the result was recorded) sends nothing.
    """
    job = jobstore.load(rt.redis, job_id)
    if job is None:
        log.warning("job %s not found (expired or purged); message dropped", job_id)
        return None
    if job.state in TERMINAL:
        log.info("job %s is already %s; not sent again", job_id, job.state)
        return job.state
    lease = keys.lease(job_id)
    if not rt.redis.set(lease, os.getpid(), nx=True, px=rt.settings.visibility_timeout * 1000):
        # Another worker runs it (or died running it): look again when its lease ends.
        due = rt.clock() + max(1000, int(rt.redis.pttl(lease))) / 1000  # type: ignore[arg-type]
        delays.park(rt.redis, job_id, due)
        log.info("job %s is leased by another worker; looking again at %s", job_id, due)
        return job.state
    try:
        return _attempt_until_settled(rt, kind, job)
    finally:
        rt.redis.delete(lease)


def _attempt_until_settled(rt: Runtime, kind: JobKind, job: Job) -> str:
    attempts = job.attempts
    # In-process waits stop well before the broker would redeliver the message.
    budget_ends = time.monotonic() + rt.settings.visibility_timeout / 2
    via = channel(rt, kind.provider)
    breaker = Breaker(rt.redis, via.account, job.lane)
    probing = False
    while True:
        if not probing:
            admitted = breaker.admit(rt.clock(), rt.settings.visibility_timeout * 1000)
            if admitted == HOLD:
                return _hold(rt, job, breaker)
            probing = admitted == PROBE
        sent = _send_once(rt, via, kind, job)
        if sent is None:
            return _park(rt, job, rt.ledger.reset_at(), "points budget spent", reason="points")
        verdict, claim = sent
        if via.client.after(verdict):
            continue  # fixed on our side (a renewed token): a new permit, not an attempt
        step = decide(verdict, attempts + 1, rt.settings, rt.rng, shared_limiter=bool(via.limiter))
        log.info(
            "job %s %s: %s %s -> %s",
            job.id,
            kind.name,
            verdict.key,
            verdict.message[:200],
            step.action,
        )
        if step.action is Action.REPERMIT and via.limiter:
            via.limiter.pause(verdict.retry_after)
            continue
        if step.action is Action.PAUSE:
            return _pause_lane(rt, job, breaker, verdict, step)
        if probing:
            released = breaker.close(rt.clock())
            log.warning(
                "site %s %s lane resumed after a probe; %d jobs released",
                breaker.site,
                job.lane,
                released,
            )
            probing = False
        if step.action is Action.AWAIT_RESET:
            rt.ledger.mark_spent(claim)
            return _park(rt, job, rt.ledger.reset_at(), step.reason, last=verdict.describe())
        attempts += 1
        if step.action is Action.WAIT and time.monotonic() + step.delay > budget_ends:
            step = Step(Action.DELAY, step.delay, step.reason)
        if step.action is not Action.WAIT:
            return _settle(rt, kind, job, verdict, step, attempts)
        jobstore.transition(
            rt.redis, job.id, State.RETRYING, attempt=True, now=rt.clock(), last=verdict.describe()
        )
        rt.sleep(step.delay)


def _send_once(
    rt: Runtime, via: Channel, kind: JobKind, job: Job
) -> tuple[Verdict, PointsClaim] | None:
    """Take a permit (reserving points), send, classify, settle the points.
    None when the day's points are spent (nothing sent)."""
    jobstore.transition(rt.redis, job.id, State.RUNNING, now=rt.clock())
    claim = via.claim(kind.name, job.lane)
    permit = via.limiter.acquire(job.lane, claim) if via.limiter else None
    if via.limiter and permit is None:
        return None
    path, body = kind.request(job.payload)
    answer = via.client.post(path, body)
    verdict = classify(answer, rt.settings.points_exhausted_codes, via.success_statuses)
    if permit is not None:
        via.settle(claim, success=verdict.outcome is Outcome.DONE)
    return verdict, claim


def _pause_lane(rt: Runtime, job: Job, breaker: Breaker, verdict: Verdict, step: Step) -> str:
    """An account-level answer: open the breaker; the first job to open it is the probe."""
    reason = f"account-level: {step.reason}"
    interval = rt.settings.breaker_probe_interval
    probe_at = breaker.open(reason, verdict.describe(), rt.clock(), interval)
    if probe_at is None:
        return _hold(rt, job, breaker)
    log.warning("site %s %s lane paused: %s; probe at %s", breaker.site, job.lane, reason, probe_at)
    return _park(rt, job, probe_at, reason, last=verdict.describe())


def _settle(
    rt: Runtime, kind: JobKind, job: Job, verdict: Verdict, step: Step, attempts: int
) -> str:
    """Record the outcome of a counted attempt, riding out a short Redis outage: a success
    that is not recorded before the message is redelivered would be sent again."""
    deadline = time.monotonic() + rt.settings.visibility_timeout / 4
    while True:
        try:
            return _record(rt, kind, job, verdict, step, attempts)
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() > deadline:
                raise
            log.warning("job %s: Redis unreachable; recording its outcome again in 1 s", job.id)
            time.sleep(1.0)


def _record(
    rt: Runtime, kind: JobKind, job: Job, verdict: Verdict, step: Step, attempts: int
) -> str:
    """Record the outcome of a counted attempt: done, dead letter, or a durable delay."""
    now = rt.clock()
    last = verdict.describe()
    if step.action is Action.FINISH:
        jobstore.transition(
            rt.redis,
            job.id,
            State.DONE,
            attempt=True,
            keep_seconds=_keep(rt),
            now=now,
            last=last,
            result=kind.results(verdict.body),
        )
        return State.DONE
    if step.action is Action.DEAD_LETTER:
        failure = {**last, "policy": verdict.key, "reason": step.reason}
        _dead_letter(rt, job, failure, attempts, count_attempt=True)
        return State.DEAD
    return _park(rt, job, now + step.delay, step.reason, last=last, attempt=True)


def _hold(rt: Runtime, job: Job, breaker: Breaker) -> str:
    """Keep the job, paused, until the breaker of its site and lane closes."""
    now = rt.clock()
    last = {
        "outcome": "pause",
        "reason": "breaker open",
        "http_status": None,
        "code": None,
        "message": f"{job.lane} lane of site {breaker.site} is paused",
    }
    with rt.redis.pipeline(transaction=True) as pipe:
        breaker.hold(pipe, job.id, now)
        jobstore.transition(pipe, job.id, State.PAUSED, now=now, last=last)
        pipe.execute()
    return State.PAUSED


def _park(
    rt: Runtime,
    job: Job,
    due_at: float,
    why: str,
    *,
    attempt: bool = False,
    last: dict[str, Any] | None = None,
    reason: str = "",
) -> str:
    """Move the job to the durable delay set until ``due_at``; beat requeues it then."""
    last = last or {
        "outcome": "retry",
        "reason": reason,
        "http_status": None,
        "code": None,
        "message": why,
    }
    with rt.redis.pipeline(transaction=True) as pipe:
        delays.park(pipe, job.id, due_at)
        jobstore.transition(
            pipe, job.id, State.DELAYED, attempt=attempt, now=rt.clock(), last=last, due_at=due_at
        )
        pipe.execute()
    log.info("job %s parked until %s: %s", job.id, due_at, why)
    return State.DELAYED


def _dead_letter(
    rt: Runtime, job: Job, failure: dict[str, Any], attempts: int, *, count_attempt: bool
) -> None:
    """Mark the job dead and record its dead letter, in one transaction."""
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
        jobstore.transition(
            pipe,
            job.id,
            State.DEAD,
            attempt=count_attempt,
            keep_seconds=_keep(rt),
            now=now,
            last=last,
        )
        pipe.execute()


def _keep(rt: Runtime) -> int:
    return rt.settings.job_retention_days * 86400
