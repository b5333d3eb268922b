"""The producer API: validate, then enqueue all-or-nothing.

producer = Producer(Settings())
job_id = producer.callback({"routeKey": "rk", "phone": "79991234567"})
job_ids = producer.comments(leads)          # packed 100 leads per request
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import OutOfMemoryError, ReadOnlyError

from config import Settings
from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from tasks.batch import CHUNK, Batch, CommitUncertain, Enqueued
from tasks.jobstream import Job, auto_key, callback_kind, comment_jobs, jobs_of, keyed
from tasks.kind import JobKind
from tasks.models import CommentLead
from tasks.models.common import ApiModel
from tasks.registry import KINDS
from tasks.staging import LeadStaging
from tasks.validation import Problems, json_lines, split_lines, validate
from worker import delays, jobstore, keys
from worker.errors import RedisUnavailable
from worker.failover import NotReplicated
from worker.messages import MessageBuilder
from worker.outage import TRANSIENT, ride_out
from worker.redis_conn import connect, redis_url
from worker.redis_health import describe_full, refuse_eviction
from worker.transactions import transact

T = TypeVar("T")


class QueueUnavailable(RedisUnavailable):
    """Redis could not be reached, or is full; nothing was enqueued."""


# How long a producer tries to learn whether a commit whose reply was lost ran.
CONFIRM_SECONDS = 10.0

# Redis away, full (noeviction at maxmemory), or a read-only replica during a failover.
UNAVAILABLE = (*TRANSIENT, OperationalError, OSError)


def unavailable(exc: Exception, nothing_was: str = "enqueued") -> QueueUnavailable:
    if isinstance(exc, OutOfMemoryError):
        return QueueUnavailable(f"{describe_full(exc)}; nothing was {nothing_was}")
    if isinstance(exc, ReadOnlyError):
        return QueueUnavailable(
            f"Redis is read-only, a replica ({exc}): a failover under way, or REDIS_URL names "
            f"a replica; nothing was {nothing_was}"
        )
    if isinstance(exc, NotReplicated):
        return QueueUnavailable(f"{exc}; nothing was {nothing_was}")
    return QueueUnavailable(f"Redis is unreachable ({exc}); nothing was {nothing_was}")


class Producer:
    """Enqueues validated jobs. Invalid input raises ``JobValidationError`` (nothing enqueued);
    an unreachable Redis raises ``QueueUnavailable`` (nothing enqueued)."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        from worker.celery_app import create_app  # the app imports the tasks, which import us

        self.settings = settings
        self.url = redis_url(settings)
        self.redis = connect(settings, self.url, resend=False)
        try:
            refuse_eviction(self.redis, settings)
        except UNAVAILABLE as exc:
            self.redis.close()
            raise unavailable(exc) from exc
        self.app = app or create_app(settings, self.url)
        self._builders = threading.local()
        self._builders_lock = threading.Lock()
        self._every_builder: list[MessageBuilder] = []

    def callback(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> str:
        """Enqueue one callback (Calltouch, or Pozvonim with ``"provider": "pozvonim"``).
        Without a key, an identical callback enqueued within CTQ_IDEMPOTENCY_WINDOW returns
        the first one's job id instead of calling twice."""
        kind = callback_kind(data)
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(
            kind, [body], [idempotency_key], not_before=not_before, account=account
        )[0]

    def pool_update(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> str:
        kind = KINDS["pool-update"]
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(
            kind, [body], [idempotency_key], not_before=not_before, account=account
        )[0]

    def comments(
        self,
        leads: Iterable[dict[str, Any] | CommentLead],
        *,
        idempotency_key: str | None = None,
        account: str | None = None,
    ) -> list[str]:
        """Enqueue leads to comment, packed up to 100 per request; one job id per request.
        With a key, request N of this input is known as ``KEY:N``. ``leads`` is read one at
        a time: it may be a generator over an input of any size."""
        problems = Problems()
        jobs = comment_jobs(enumerate(leads, start=1), problems)
        keyed_jobs = keyed(jobs, idempotency_key, derive=False)
        return self._enqueue(keyed_jobs, problems, account=account)

    def from_json_lines(
        self,
        kind_name: str,
        text: str | Iterable[str | bytes],
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued:
        """Enqueue JSONL input (one job per line; one lead per line for comments): a text, or
        its lines (an open file: read line by line, never whole). With a key, the job of
        line (or request) N is known as ``KEY:N``; without one, each job's key is derived
        from its content, so running the same input again within the window enqueues
        nothing twice (e.g. after Redis went away before confirming the first run)."""
        problems = Problems()
        lines = split_lines(text) if isinstance(text, str) else text
        items = json_lines(lines, problems, self.settings.max_line_bytes)
        return self.from_items(kind_name, items, problems, idempotency_key, not_before, account)

    def from_items(
        self,
        kind_name: str,
        items: Iterable[tuple[int, Any]],
        problems: Problems,
        idempotency_key: str | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued:
        """``from_json_lines`` for input already parsed: ``(line, value)`` pairs, whose
        reader reports its own problems (bad JSON) to ``problems``."""
        jobs = jobs_of(kind_name, items, problems)
        keyed_jobs = keyed(jobs, idempotency_key, derive=True)
        return self._enqueue(keyed_jobs, problems, not_before, account)

    def enqueue(
        self,
        kind: JobKind,
        bodies: Sequence[ApiModel],
        idempotency_keys: Sequence[str | None] | None = None,
        *,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued:
        """Enqueue validated ``bodies`` of one kind (see ``enqueue_jobs``)."""
        jobs = [(kind, b) for b in bodies]
        return self.enqueue_jobs(jobs, idempotency_keys, not_before, account)

    def enqueue_jobs(
        self,
        jobs: Sequence[tuple[JobKind, ApiModel]],
        idempotency_keys: Sequence[str | None] | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued:
        """Enqueue validated jobs of ``account`` (None: ``default``), all or nothing.

        A job whose idempotency key was used within CTQ_IDEMPOTENCY_WINDOW is not enqueued
        again: its place in the answer holds the first job's id (a key used for a different
        payload is refused). Callbacks without a key get one from their body. With
        ``not_before`` (unix time) the jobs wait in the durable delay set until then.
        """
        names = list(idempotency_keys or [None] * len(jobs))
        bodies = ((kind, body.api_body()) for kind, body in jobs)
        items = (
            (kind, payload, name or (auto_key(kind.name, payload) if kind.dedupe_by_body else None))
            for (kind, payload), name in zip(bodies, names, strict=True)
        )
        return self._enqueue(items, Problems(), not_before, account)

    def _enqueue(
        self,
        jobs: Iterable[Job],
        problems: Problems,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued:
        """Stage ``jobs`` as they come, then commit them all at once (see ``tasks.batch``).

        If the connection breaks while Redis runs the commit, the producer asks Redis again
        whether it ran, so "nothing was enqueued" is only said when it is true.
        """
        name = self.settings.account(account).name  # an unknown account is refused first
        try:
            batch = self._batch(self._builder(), problems, not_before, name)
            return self._stage_and_commit(batch, jobs)
        except UNAVAILABLE as exc:
            self._forget_builder()  # its channel may hold a dead connection
            raise unavailable(exc) from exc

    async def from_items_at_once(
        self,
        client: redis.asyncio.Redis,
        builder: MessageBuilder,
        kind_name: str,
        items: Iterable[tuple[int, Any]],
        problems: Problems,
        idempotency_key: str | None = None,
        not_before: float | None = None,
        account: str | None = None,
    ) -> Enqueued | None:
        """``from_items`` in an event loop for an input of one chunk (a single callback, a
        small array): the same checks, messages and commit, its one round trip made on
        ``client`` (redis.asyncio) instead of a thread's blocking call. ``builder`` is the
        loop's own (``message_builder``). None for a larger input: nothing was done, and
        ``from_items`` enqueues it."""
        name = self.settings.account(account).name
        jobs = keyed(jobs_of(kind_name, items, problems), idempotency_key, derive=True)
        head = list(itertools.islice(jobs, CHUNK))
        if len(head) == CHUNK:
            return None
        batch = self._batch(builder, problems, not_before, name)
        for job in head:
            batch.add(job)
        try:
            return await batch.commit_on(client)
        except CommitUncertain as uncertain:
            return await asyncio.to_thread(self._confirm, batch, uncertain)
        except UNAVAILABLE as exc:
            raise unavailable(exc) from exc

    def _batch(
        self, builder: MessageBuilder, problems: Problems, not_before: float | None, account: str
    ) -> Batch:
        window = self.settings.idempotency_window
        return Batch(
            self.redis, builder, problems, window=window, not_before=not_before, account=account
        )

    def message_builder(self) -> MessageBuilder:
        """A message builder of the caller's own, to close when done. Making one blocks (a
        connection to Redis): an event loop has its own made in another thread."""
        return MessageBuilder(self.app)

    def transact(
        self,
        body: Callable[[redis.client.Pipeline, MessageBuilder], T],
        *watched: str,
        nothing_was: str = "enqueued",
    ) -> T:
        """Run ``body`` as a WATCH transaction (``worker.transactions.transact``) with this
        thread's message builder, for jobs it queues with ``add_job`` beside writes of its own;
        Redis trouble is a ``QueueUnavailable``, as for any enqueue."""
        try:
            builder = self._builder()
            return transact(self.redis, lambda pipe: body(pipe, builder), *watched)
        except UNAVAILABLE as exc:
            self._forget_builder()  # its channel may hold a dead connection
            raise unavailable(exc, nothing_was) from exc

    def _builder(self) -> MessageBuilder:
        """This thread's message builder, kept between inputs: making one opens a kombu
        channel (a new Redis connection and a PING), which cost more than a one-job enqueue
        itself. One per thread, as a kombu channel is not shared between threads."""
        builder: MessageBuilder | None = getattr(self._builders, "builder", None)
        if builder is None:
            builder = self._builders.builder = MessageBuilder(self.app)
            with self._builders_lock:
                self._every_builder.append(builder)
        return builder

    def _forget_builder(self) -> None:
        builder: MessageBuilder | None = getattr(self._builders, "builder", None)
        self._builders.builder = None
        if builder is not None:
            with self._builders_lock:
                self._every_builder.remove(builder)
            discard_quietly(builder.close)

    def _stage_and_commit(self, batch: Batch, jobs: Iterable[Job]) -> Enqueued:
        try:
            for job in jobs:
                batch.add(job)
            return batch.commit()
        except CommitUncertain as uncertain:
            return self._confirm(batch, uncertain)
        except BaseException:
            discard_quietly(batch.discard)
            raise

    def _confirm(self, batch: Batch, uncertain: CommitUncertain) -> Enqueued:
        """Did the commit whose reply was lost run? Its receipt in Redis says."""
        cause = uncertain.__cause__ if isinstance(uncertain.__cause__, Exception) else uncertain
        try:
            ran = ride_out(batch.confirm, within=CONFIRM_SECONDS, what="confirming an enqueue")
        except UNAVAILABLE:
            raise QueueUnavailable(
                f"Redis went away or failed over while committing {len(batch.answer)} job(s) "
                f"({cause}) and could not be asked whether they were enqueued. Running the same "
                "input again is safe: jobs already enqueued are recognised by their idempotency "
                "keys and not enqueued twice"
            ) from cause
        if ran is None:
            discard_quietly(batch.discard)
            raise unavailable(cause)
        return ran

    def add_job(
        self,
        pipe: redis.client.Pipeline,
        builder: MessageBuilder,
        kind: JobKind,
        payload: dict[str, Any],
        now: float,
        not_before: float | None = None,
        job_id: str | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> str:
        """Queue one job's record and message in the caller's transaction; return its id."""
        job_id = job_id or uuid.uuid4().hex
        fields = jobstore.new_fields(kind.name, kind.lane, payload, now, account)
        if not_before is not None and not_before > now:
            fields["state"] = jobstore.State.DELAYED
            delays.park(pipe, job_id, not_before)
        else:
            queue = keys.queue(kind.lane, account)
            for command, args in builder.commands(kind.task_name, job_id, queue):
                getattr(pipe, command)(*args)
        pipe.hset(keys.job(job_id), mapping=fields)
        pipe.hincrby(keys.STATS, str(fields["state"]), 1)
        pipe.hincrby(keys.account_stats(account), str(fields["state"]), 1)
        pipe.zadd(keys.jobs_in(str(fields["state"])), {job_id: now})
        return job_id

    def stage_comments(
        self, leads: Iterable[dict[str, Any] | CommentLead], *, account: str | None = None
    ) -> int:
        """Validate leads and stage them for ``account``'s nightly run, all or nothing; return
        how many leads it has staged now. ``leads`` is read one at a time (lead N is line N)."""
        return self._stage(enumerate(leads, start=1), Problems(), account)

    def stage_comment_lines(
        self, text: str | Iterable[str | bytes], *, account: str | None = None
    ) -> int:
        """``stage_comments`` for JSONL input (a text, or its lines: an open file)."""
        problems = Problems()
        lines = split_lines(text) if isinstance(text, str) else text
        items = json_lines(lines, problems, self.settings.max_line_bytes)
        return self._stage(items, problems, account)

    def _stage(
        self, items: Iterable[tuple[int, Any]], problems: Problems, account: str | None
    ) -> int:
        name = self.settings.account(account).name
        staging = LeadStaging(self.redis, account=name)
        try:
            try:
                staging.read(items, problems)
                problems.raise_if_any()
            except BaseException:
                discard_quietly(staging.discard)
                raise
            return self._move(staging)
        except UNAVAILABLE as exc:
            raise unavailable(exc, "staged") from exc

    def _move(self, staging: LeadStaging) -> int:
        """Move the validated leads; after a lost reply, ask whether the move ran."""
        try:
            return staging.move()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            try:
                moved = ride_out(staging.moved, within=CONFIRM_SECONDS, what="confirming a staging")
            except UNAVAILABLE:
                raise QueueUnavailable(
                    f"Redis went away or failed over while staging {staging.pushed} lead(s) "
                    f"({exc}) and could not be asked whether they were staged: see `ctq status` "
                    "(staged leads) before staging them again"
                ) from exc
            if moved:
                return int(self.redis.llen(staging.target))
            discard_quietly(staging.discard)
            raise unavailable(exc, "staged") from exc
        except BaseException:
            discard_quietly(staging.discard)
            raise

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._builders_lock:
            builders, self._every_builder = self._every_builder, []
        for builder in builders:
            discard_quietly(builder.close)
        self.redis.close()


def discard_quietly(discard: Callable[[], None]) -> None:
    """Clean up after a failed input; if Redis is away, its TTL does it later."""
    with contextlib.suppress(*UNAVAILABLE):
        discard()
