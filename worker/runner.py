"""Running one job: the plain function behind every Celery task."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import redis
from celery import Celery
from celery.exceptions import Reject
from redis.exceptions import LockError

from config.policy import Outcome
from tasks.kind import JobKind
from worker import delays, failover, jobstore, metrics, records
from worker.breaker import Admission, Breaker
from worker.decision import Action, Step, decide
from worker.jobstore import LIVE, Job, State
from worker.lease import Lease
from worker.ledger import next_reset
from worker.limiter import ComeBack, Permit, PointsClaim
from worker.outage import ride_out
from worker.outcome import Verdict, classify
from worker.redaction import redact_text
from worker.runtime import Channel, Runtime, channel, runtime_of

log = logging.getLogger(__name__)

T = TypeVar("T")
# What a run that lost its lease before sending returns: the job runs in another worker.
TAKEN_OVER = State.RUNNING
# What a bulk job returns when it gives its process to a waiting callback (see ``execute``).
GAVE_WAY = "gave-way"


def execute(app: Celery, kind: JobKind, job_id: str) -> str | None:
    """The body of every job task: run the job; never lose it to an error of our own.

    Redis trouble requeues the message (the job is intact and will run again); any other
    exception is a bug, and the job is dead-lettered with it rather than retried forever.
    """
    rt = runtime_of(app)
    try:
        state = run_job(rt, kind, job_id)
    except redis.RedisError as exc:
        log.warning("job %s: Redis error, message requeued: %s", job_id, exc)
        time.sleep(1.0)  # do not spin while Redis is away
        raise Reject(str(exc), requeue=True) from exc
    except Exception as exc:
        log.exception("job %s: internal error; dead-lettered", job_id)
        job = jobstore.load(rt.redis, job_id)
        if job is not None:
            message = redact_text(f"{type(exc).__name__}: {exc}")[:500]
            failure = {
                **records.no_answer("dead", "internal error in ctq", message).as_dict(),
                "policy": "internal",
            }
            records.dead_letter(rt, job, failure, job.attempts, count_attempt=False)
        return State.DEAD
    if state == GAVE_WAY:
        # kombu's own requeue: the message goes back on its queue, and this process is free
        # for the callback waiting for one.
        raise Reject("a callback is waiting: this bulk job gave way", requeue=True)
    return state


def run_job(rt: Runtime, kind: JobKind, job_id: str) -> str | None:
    """Send job ``job_id`` until it is done, dead-lettered or parked; return its new state.

    Every request first takes a permit from the shared limiter. A message for a job that is
    already done or dead (a redelivery after the result was recorded), or cancelled, sends
    nothing.
    """
    job = jobstore.load(rt.redis, job_id)
    if job is None:
        log.warning("job %s not found (expired or purged); message dropped", job_id)
        return None
    if job.state not in LIVE:
        # Finished, or waiting in the delay set or behind an open breaker, which queue it
        # again (as "queued") when it is due: this is a spare copy of an earlier message (a
        # redelivery, a put-back) and must not send it again, or early.
        log.debug("job %s is %s; this message sends nothing", job_id, job.state)
        return job.state
    lease = Lease(rt.redis, job_id, rt.settings.lease_seconds)
    # Nothing is sent yet: wait out a full or restarting Redis rather than bounce the message.
    took = ride_out(
        lease.acquire,
        within=rt.settings.visibility_timeout / 4,
        what=f"job {job_id}: taking its lease",
    )
    if not took:
        # Another worker runs it (or died running it): look again when its lease ends.
        due = rt.clock() + max(1000, int(rt.redis.pttl(lease.name))) / 1000
        delays.park(rt.redis, job_id, due)
        log.debug("job %s is leased by another worker; looking again at %s", job_id, due)
        return job.state
    if rt.heartbeat:
        rt.heartbeat.hold(lease)
    try:
        return JobRun(rt, kind, job, lease).until_settled()
    finally:
        if rt.heartbeat:
            rt.heartbeat.drop(lease)
        _release(lease, job_id)


def _release(lease: Lease, job_id: str) -> None:
    """Give the lease back if it is still ours (it may have lapsed and been taken over)."""
    try:
        ride_out(lease.release, within=5.0, what=f"job {job_id}: releasing its lease")
    except LockError:
        log.warning("job %s: its lease had lapsed before the job ended", job_id)
    except redis.RedisError as exc:
        log.warning("job %s: lease not released (%s); it lapses by itself", job_id, exc)


class JobRun:
    """One run of one job in this process: attempts until the job is settled or parked."""

    def __init__(self, rt: Runtime, kind: JobKind, job: Job, lease: Lease) -> None:
        self.rt, self.kind, self.job, self.lease = rt, kind, job, lease
        self.via: Channel = channel(rt, kind.provider, job.account)
        self.breaker = Breaker(rt.redis, self.via.account, job.lane)
        self.attempts = job.attempts
        self.probing = False
        self.claim: PointsClaim | None = None
        self.waited = 0.0  # for the permit of the request in flight (metrics)
        # Waits in this process end well before the broker would redeliver the message, and
        # recording an answer may ride out a Redis outage for a quarter of that timeout.
        visibility = rt.settings.visibility_timeout
        self.budget_ends = time.monotonic() + visibility / 2
        self.ride_out_for = visibility / 4

    def until_settled(self) -> str:
        while True:
            sent = ride_out(
                self._admit_and_send,
                within=self._budget_left(),
                what=f"job {self.job.id}: before sending",
            )
            if isinstance(sent, str):
                return sent
            if not isinstance(sent, tuple):
                return self._not_sent(sent)
            verdict, permit = sent
            # The API has answered. Every write from here rides out a Redis outage: an answer
            # not recorded before the message is redelivered would be sent again.
            success = verdict.outcome is Outcome.DONE
            self._ride_out("counting its request", partial(self._count, verdict, permit))
            self._ride_out("settling its points", partial(self.via.settle, permit, success))
            ended = self._ride_out("recording its outcome", partial(self._conclude, verdict))
            if isinstance(ended, str):
                return ended
            if ended:
                self.rt.sleep(ended)

    def _admit_and_send(self) -> str | tuple[Verdict, Permit] | ComeBack | None:
        """Held by an open breaker (the new state), or ``_send_once``'s answer. A Redis error
        here comes before anything is sent, so the caller may simply try again."""
        if not self.probing:
            admitted = self.breaker.admit(
                self.rt.clock(), self.rt.settings.visibility_timeout * 1000
            )
            if admitted is Admission.HOLD:
                return records.hold(self.rt, self.job, self.breaker)
            self.probing = admitted is Admission.PROBE
        return self._send_once()

    def _send_once(self) -> str | tuple[Verdict, Permit] | ComeBack | None:
        """Take a permit (reserving points), send, classify. Nothing is sent when the day's
        points are spent (None) or the next slot is further than this process may wait."""
        rt, job = self.rt, self.job
        moved = jobstore.transition(rt.redis, job.id, State.RUNNING, now=rt.clock())
        if moved is not None and moved[0] == State.CANCELLED:
            why = "cancelled before it was sent"
            records.log_outcome(job, "cancelled", records.no_answer("cancelled", "cancel", why))
            return State.CANCELLED
        self.claim = claim = self.via.claim(self.kind.name, job.lane)
        # Asked before the permit: the sentinels' answers are not in the limiter's margin.
        replicas = failover.point_at_primary(rt.redis)
        window = self.via.limiter.window_us / 1_000_000
        may_wait = min(max(rt.settings.inprocess_wait_max, window), self._budget_left())
        asked = time.monotonic()
        permit = self.via.limiter.acquire(job.lane, claim, may_wait, self.via.share)
        if not isinstance(permit, Permit):
            return permit
        self.waited = time.monotonic() - asked
        # Fencing: the job's lease must still be this process's (it may have stalled past
        # it, frozen or swapped out, and another worker taken the job over), and be on the
        # primary that survives a Redis failover (worker.failover).
        try:
            ours = self.lease.renew(replicas)
        except redis.RedisError:
            with contextlib.suppress(redis.RedisError):  # else it lapses by itself
                self.via.limiter.cancel(permit)
            raise
        if not ours:
            self.via.limiter.cancel(permit)
            log.warning(
                "job %s: lease lost before sending (another worker has the job, or Redis "
                "failed over); not sent from here",
                job.id,
            )
            return TAKEN_OVER
        path, body = self.kind.request(job.payload)
        answer = self.via.client.post(path, body)
        return classify(
            answer, rt.settings.points_exhausted_codes, self.via.success_statuses
        ), permit

    def _count(self, verdict: Verdict, permit: Permit) -> None:
        """Count the request in the cluster-wide metrics (``worker.metrics``)."""
        spent = permit.claim.cost if verdict.outcome is Outcome.DONE else 0
        sent = metrics.Sent(
            self.kind.provider,
            self.kind.name,
            str(verdict.outcome),
            self.job.lane,
            self.via.limiter.key,
            permit.slot_us,
            self.waited,
            permit.claim.key,
            spent,
        )
        metrics.record_sent(self.rt.redis, sent)

    def _not_sent(self, why: ComeBack | None) -> str:
        rt, job = self.rt, self.job
        if isinstance(why, ComeBack) and why.give_way:
            records.requeued(rt, job, why.why)
            return GAVE_WAY
        if why is None:
            return records.park(rt, job, self._day_ends(), "points budget spent", reason="points")
        return records.park(rt, job, rt.clock() + why.delay, why.why, reason="limiter")

    def _conclude(self, verdict: Verdict) -> str | float:
        """Act on an answer: the job's new state, or how long to wait before sending again.

        Safe to run again after a Redis error part-way (see ``records``)."""
        rt, job, breaker = self.rt, self.job, self.breaker
        if verdict.round_trip is not None:
            self.via.limiter.observe(verdict.round_trip)
        if self.via.client.after(verdict):
            return 0.0  # fixed on our side (a renewed token): a new permit, not an attempt
        step = self._step(verdict)
        log.debug(
            "job %s %s: %s %s -> %s",
            job.id,
            self.kind.name,
            verdict.key,
            verdict.message[:200],
            step.action,
        )
        if step.action is Action.REPERMIT:
            log.warning("job %s: HTTP 429; this limiter pauses for every worker", job.id)
            self.via.limiter.pause(verdict.retry_after)
            return 0.0
        if step.action is Action.PAUSE:
            return self._pause_lane(verdict, step)
        if self.probing:
            released = breaker.close(rt.clock())
            log.warning(
                "site %s %s lane resumed after a probe; %d jobs released",
                breaker.site,
                job.lane,
                released,
            )
            self.probing = False
        if step.action is Action.AWAIT_RESET:
            if self.claim and self.claim.key and self.via.ledger:
                self.via.ledger.mark_spent(self.claim)
            return records.park(rt, job, self._day_ends(), step.reason, last=verdict.describe())
        attempts = self.attempts + 1
        if step.action is Action.WAIT and step.delay > self._budget_left():
            step = Step(Action.DELAY, step.delay, step.reason)
        if step.action is Action.FINISH:
            return records.done(rt, self.kind, job, verdict)
        last = verdict.describe()
        if step.action is Action.DEAD_LETTER:
            failure = {**last.as_dict(), "policy": verdict.key, "reason": step.reason}
            return records.dead_letter(rt, job, failure, attempts, count_attempt=True)
        if step.action is Action.DELAY:
            return records.park(
                rt, job, rt.clock() + step.delay, step.reason, last=last, attempt=True
            )
        jobstore.transition(
            rt.redis, job.id, State.RETRYING, attempt=True, now=rt.clock(), last=last
        )
        self.attempts = attempts
        why = f"{step.reason}; attempt {attempts} of {rt.settings.max_attempts}"
        records.log_outcome(job, "retry", last, f"{why}, again in {step.delay:.1f} s")
        return step.delay

    def _step(self, verdict: Verdict) -> Step:
        """The policy's step, except that a run of unknown codes on one site pauses it."""
        settings = self.rt.settings
        step = decide(verdict, self.attempts + 1, settings, self.rt.rng)
        if verdict.key in ("timeout", "connection"):
            return step  # no answer: says nothing about the account
        streak = self.breaker.unknown_streak(verdict.key == "api_other")
        if streak >= settings.unknown_code_pause_after:
            why = f"{streak} answers in a row with an unknown API code (last: {verdict.code})"
            return Step(Action.PAUSE, reason=why)
        return step

    def _pause_lane(self, verdict: Verdict, step: Step) -> str:
        """An account-level answer: open the breaker; the first job to open it is the probe."""
        rt, job, breaker = self.rt, self.job, self.breaker
        reason = f"account-level: {step.reason}"
        interval = rt.settings.breaker_probe_interval
        probe_at = breaker.open(job.id, reason, verdict.describe(), rt.clock(), interval)
        if probe_at is None:
            return records.hold(rt, job, breaker)
        log.warning(
            "site %s %s lane paused: %s; probe at %s", breaker.site, job.lane, reason, probe_at
        )
        return records.park(rt, job, probe_at, reason, last=verdict.describe())

    def _ride_out(self, what: str, action: Callable[[], T]) -> T:
        return ride_out(action, within=self.ride_out_for, what=f"job {self.job.id}: {what}")

    def _day_ends(self) -> float:
        """When the points budgets start again (midnight in CTQ_TIMEZONE)."""
        return next_reset(self.rt.clock(), self.rt.settings.tz)

    def _budget_left(self) -> float:
        return max(0.0, self.budget_ends - time.monotonic())
