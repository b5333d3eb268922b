"""The producer API: validate, then enqueue all-or-nothing.

producer = Producer(Settings())
job_id = producer.callback({"routeKey": "rk", "phone": "79991234567"})
job_ids = producer.comments(leads)          # packed 100 leads per request
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import OutOfMemoryError

from config import Settings
from tasks.kind import JobKind
from tasks.models import CommentJob, CommentLead
from tasks.models.comment import MAX_LEADS_PER_REQUEST
from tasks.models.common import ApiModel
from tasks.registry import KINDS
from tasks.validation import (
    JobValidationError,
    Problem,
    parse_json_lines,
    validate,
    validate_all,
)
from worker import delays, jobstore, keys
from worker.messages import MessageBuilder
from worker.outage import TRANSIENT, ride_out
from worker.redis_conn import connect, redis_url
from worker.redis_health import describe_full, refuse_eviction


class QueueUnavailable(RuntimeError):
    """Redis could not be reached, or is full; nothing was enqueued."""


# How long a producer tries to learn whether a transaction whose reply was lost ran.
CONFIRM_SECONDS = 10.0

# Redis away, full (noeviction at maxmemory), or a read-only replica during a failover.
UNAVAILABLE = (*TRANSIENT, OperationalError, OSError)


class Enqueued(list[str]):
    """The job ids of an input, in order; ``reused`` of them were enqueued before (the same
    idempotency key within CTQ_IDEMPOTENCY_WINDOW) and are not enqueued again."""

    reused: int = 0


class _CommitUncertain(Exception):
    """The connection broke while Redis ran (or not) the enqueue transaction."""

    def __init__(self, probe_job: str, job_ids: Enqueued) -> None:
        super().__init__(probe_job)
        self.probe_job, self.job_ids = probe_job, job_ids


def unavailable(exc: Exception, nothing_was: str = "enqueued") -> QueueUnavailable:
    if isinstance(exc, OutOfMemoryError):
        return QueueUnavailable(f"{describe_full(exc)}; nothing was {nothing_was}")
    return QueueUnavailable(f"Redis is unreachable ({exc}); nothing was {nothing_was}")


class Producer:
    """Enqueues validated jobs. Invalid input raises ``JobValidationError`` (nothing enqueued);
    an unreachable Redis raises ``QueueUnavailable`` (nothing enqueued)."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        from worker.celery_app import create_app  # the app imports the tasks, which import us

        self.settings = settings
        self._url = redis_url(settings)
        self.redis = connect(settings, self._url, resend=False)
        try:
            refuse_eviction(self.redis, settings)
        except UNAVAILABLE as exc:
            self.redis.close()
            raise unavailable(exc) from exc
        self.app = app or create_app(settings, self._url)

    def callback(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> str:
        """Enqueue one callback (Calltouch, or Pozvonim with ``"provider": "pozvonim"``).
        Without a key, an identical callback enqueued within CTQ_IDEMPOTENCY_WINDOW returns
        the first one's job id instead of calling twice."""
        kind = callback_kind(data)
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(kind, [body], [idempotency_key], not_before=not_before)[0]

    def pool_update(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> str:
        kind = KINDS["pool-update"]
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(kind, [body], [idempotency_key], not_before=not_before)[0]

    def comments(
        self, leads: Iterable[dict[str, Any] | CommentLead], *, idempotency_key: str | None = None
    ) -> list[str]:
        """Enqueue leads to comment, packed up to 100 per request; one job id per request.
        With a key, request N of this input is known as ``KEY:N``."""
        valid = validate_all(CommentLead, enumerate(leads, start=1))
        jobs = [(KINDS["comment"], body) for body in pack_leads(valid)]
        return self.enqueue_jobs(jobs, numbered(idempotency_key, len(jobs)))

    def from_json_lines(
        self,
        kind_name: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> Enqueued:
        """Enqueue JSONL input (one job per line; one lead per line for comments). With a
        key, the job of line (or request) N is known as ``KEY:N``; without one, each job's key
        is derived from its content, so running the same input again within the window
        enqueues nothing twice (e.g. after Redis went away before confirming the first run)."""
        items = parse_json_lines(text)
        if kind_name == "comment":
            bodies = pack_leads(validate_all(CommentLead, items))
            jobs: list[tuple[JobKind, ApiModel]] = [(KINDS["comment"], b) for b in bodies]
        elif kind_name == "callback":
            jobs = validate_callbacks(items)
        else:
            kind = KINDS[kind_name]
            jobs = [(kind, body) for body in validate_all(kind.model, items)]
        names = numbered(idempotency_key, len(jobs)) or derived_keys(jobs)
        return self.enqueue_jobs(jobs, names, not_before)

    def enqueue(
        self,
        kind: JobKind,
        bodies: Sequence[ApiModel],
        idempotency_keys: Sequence[str | None] | None = None,
        *,
        not_before: float | None = None,
    ) -> Enqueued:
        """Enqueue validated ``bodies`` of one kind (see ``enqueue_jobs``)."""
        return self.enqueue_jobs([(kind, b) for b in bodies], idempotency_keys, not_before)

    def enqueue_jobs(
        self,
        jobs: Sequence[tuple[JobKind, ApiModel]],
        idempotency_keys: Sequence[str | None] | None = None,
        not_before: float | None = None,
    ) -> Enqueued:
        """Write the job records and their queue messages in one Redis transaction.

        A job whose idempotency key was used within CTQ_IDEMPOTENCY_WINDOW is not enqueued
        again: its place in the answer holds the first job's id (a key used for a different
        payload is refused). Callbacks without a key get one from their body. With
        ``not_before`` (unix time) the jobs wait in the durable delay set until then.

        If the connection breaks while Redis runs the transaction, the producer asks Redis
        again whether it ran, so "nothing was enqueued" is only said when it is true.
        """
        payloads = [body.model_dump(mode="json", exclude_none=True) for _, body in jobs]
        names = list(idempotency_keys or [None] * len(jobs))
        names = [
            name or (auto_key(kind.name, payload) if kind.dedupe_by_body else None)
            for name, (kind, _), payload in zip(names, jobs, payloads, strict=True)
        ]
        items = [
            (kind, payload, name)
            for (kind, _), payload, name in zip(jobs, payloads, names, strict=True)
        ]
        try:
            builder = MessageBuilder(self.app)
            try:
                return self._write(items, builder, not_before)
            finally:
                builder.close()
        except _CommitUncertain as uncertain:
            return self._confirm(uncertain)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def _confirm(self, uncertain: _CommitUncertain) -> Enqueued:
        """Did the transaction whose reply was lost run? Its first new job's record says."""
        cause = uncertain.__cause__ if isinstance(uncertain.__cause__, Exception) else uncertain
        try:
            ran = ride_out(
                partial(self.redis.exists, keys.job(uncertain.probe_job)),
                within=CONFIRM_SECONDS,
                what="confirming an enqueue",
            )
        except UNAVAILABLE:
            raise QueueUnavailable(
                f"Redis went away while committing {len(uncertain.job_ids)} job(s) ({cause}) "
                "and could not be asked whether they were enqueued. Running the same input "
                "again is safe: jobs already enqueued are recognised by their idempotency keys "
                "and not enqueued twice"
            ) from cause
        if not ran:
            raise unavailable(cause)
        return uncertain.job_ids

    def _write(
        self, items: list[Job], builder: MessageBuilder, not_before: float | None
    ) -> Enqueued:
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    return self._write_once(pipe, items, builder, not_before)
                except redis.WatchError:
                    continue  # another producer used one of the keys meanwhile: look again

    def _write_once(
        self,
        pipe: redis.client.Pipeline,
        items: list[Job],
        builder: MessageBuilder,
        not_before: float | None,
    ) -> Enqueued:
        watched = sorted({keys.idempotency(name) for _, _, name in items if name})
        known: dict[str, str] = {}
        if watched:
            pipe.watch(*watched)
            known = {k: str(v) for k, v in zip(watched, pipe.mget(watched), strict=True) if v}
        reused_payload_of_another(items, known)
        now = time.time()
        job_ids, new = Enqueued(), []
        pipe.multi()
        for kind, payload, name in items:
            key = keys.idempotency(name) if name else None
            if key and key in known:
                job_ids.append(known[key].split(" ")[0])
                job_ids.reused += 1
                continue
            job_id = uuid.uuid4().hex
            job_ids.append(job_id)
            new.append(job_id)
            if key:
                known[key] = f"{job_id} {fingerprint(payload)}"
                pipe.set(key, known[key], ex=self.settings.idempotency_window)
            self.add_job(pipe, builder, kind, payload, now, not_before, job_id)
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError, redis.WatchError) as exc:
            # redis-py reports a connection lost while keys were watched as a WatchError.
            lost = exc.__context__ if isinstance(exc, redis.WatchError) else exc
            if new and isinstance(lost, redis.ConnectionError | redis.TimeoutError):
                raise _CommitUncertain(new[0], job_ids) from lost  # the reply is lost
            raise
        return job_ids

    def add_job(
        self,
        pipe: redis.client.Pipeline,
        builder: MessageBuilder,
        kind: JobKind,
        payload: dict[str, Any],
        now: float,
        not_before: float | None = None,
        job_id: str | None = None,
    ) -> str:
        """Queue one job's record and message in the caller's transaction; return its id."""
        job_id = job_id or uuid.uuid4().hex
        fields = jobstore.new_fields(kind.name, kind.lane, payload, now)
        if not_before is not None and not_before > now:
            fields["state"] = jobstore.State.DELAYED
            delays.park(pipe, job_id, not_before)
        else:
            for command, args in builder.commands(kind.task_name, job_id, kind.lane):
                getattr(pipe, command)(*args)
        pipe.hset(keys.job(job_id), mapping=fields)
        pipe.hincrby(keys.STATS, str(fields["state"]), 1)
        return job_id

    def stage_comments(self, leads: Iterable[dict[str, Any] | CommentLead]) -> int:
        """Validate leads and stage them for the nightly run, all or nothing; return how many
        leads are staged now."""
        valid = validate_all(CommentLead, enumerate(leads, start=1))
        lines = [lead.model_dump_json(exclude_none=True) for lead in valid]
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(keys.STAGED_COMMENTS, *lines)
                return int(pipe.execute()[0])
        except UNAVAILABLE as exc:
            raise unavailable(exc, "staged") from exc

    def close(self) -> None:
        self.redis.close()


Job = tuple[JobKind, dict[str, Any], str | None]  # kind, API body, idempotency key


def callback_kind(data: dict[str, Any] | ApiModel) -> JobKind:
    """Calltouch's callback kind, or Pozvonim's when the body says ``"provider": "pozvonim"``."""
    provider = data.get("provider") if isinstance(data, dict) else getattr(data, "provider", None)
    return KINDS["pozvonim-call"] if provider == "pozvonim" else KINDS["callback"]


def validate_callbacks(items: list[tuple[int, Any]]) -> list[tuple[JobKind, ApiModel]]:
    """Each line against its provider's model; every problem of every line, or the jobs."""
    jobs: list[tuple[JobKind, ApiModel]] = []
    problems: list[Problem] = []
    for line, data in items:
        kind = callback_kind(data) if isinstance(data, dict) else KINDS["callback"]
        try:
            jobs.append((kind, validate(kind.model, data, line)))
        except JobValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise JobValidationError(problems)
    return jobs


def numbered(key: str | None, count: int) -> list[str | None] | None:
    """One key for one job; ``KEY:1`` … ``KEY:N`` for several."""
    if key is None:
        return None
    return [key] if count == 1 else [f"{key}:{n}" for n in range(1, count + 1)]


def fingerprint(payload: dict[str, Any]) -> str:
    """A hash of a job's body, independent of key order."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def auto_key(kind: str, payload: dict[str, Any]) -> str:
    """The default idempotency key of a callback: its kind and a hash of its body."""
    return f"auto:{kind}:{fingerprint(payload)}"


def derived_keys(jobs: Sequence[tuple[JobKind, ApiModel]]) -> list[str | None]:
    """Keys for the jobs of an input, from their content: the N-th job with the same body in
    this input is ``input:KIND:HASH:N``, so identical lines stay separate jobs while the same
    input sent again maps onto the same keys. Kinds deduplicated by body keep their own key."""
    seen: Counter[str] = Counter()
    names: list[str | None] = []
    for kind, body in jobs:
        if kind.dedupe_by_body:
            names.append(None)
            continue
        digest = fingerprint(body.model_dump(mode="json", exclude_none=True))
        seen[digest] += 1
        names.append(f"input:{kind.name}:{digest}:{seen[digest]}")
    return names


def reused_payload_of_another(items: Sequence[Job], known: dict[str, str]) -> None:
    """Refuse a key that was used within the window for a different body (as Stripe does):
    answering with the other job's id would hide that this body was never enqueued."""
    problems = []
    for line, (_, payload, name) in enumerate(items, start=1):
        stored = known.get(keys.idempotency(name)) if name else None
        if stored and " " in stored and stored.split(" ")[1] != fingerprint(payload):
            problems.append(
                Problem(
                    line,
                    "(idempotency key)",
                    f"{name!r} was used within CTQ_IDEMPOTENCY_WINDOW for a different payload "
                    f"(job {stored.split(' ')[0]}); use a new key for a new job",
                )
            )
    if problems:
        raise JobValidationError(problems)


def pack_leads(leads: Sequence[CommentLead]) -> list[CommentJob]:
    """Leads in input order, up to 100 per request."""
    step = MAX_LEADS_PER_REQUEST
    return [CommentJob(comments=list(leads[i : i + step])) for i in range(0, len(leads), step)]
