"""Enqueueing an input of any size all-or-nothing: stage its jobs, then commit them at once.

Jobs are written as they are read, a chunk at a time, to a staging area of their own (see
``keys.batch``) that no worker reads: an entry per job (its queue, idempotency key and record
fields), its payload, and kombu's message for its queue. ``commit_batch.lua`` then makes all
of them visible in one step. A refused or failed input is discarded; a producer killed midway
leaves a staging area that expires ``STAGING_TTL`` seconds after its last chunk.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from tasks.jobstream import Job, fingerprint
from tasks.kind import JobKind
from tasks.validation import Problem, Problems
from worker import failover, jobstore, keys
from worker.errors import CtqError
from worker.messages import MessageBuilder

CHUNK = 100  # jobs written to the staging area at a time (10,000 leads for comments)
STAGING_TTL = 900  # seconds a staging area outlives its last chunk
RECEIPT_TTL = 600  # seconds a commit's receipt is kept: long enough to ask after a lost reply


class Enqueued(list[str]):
    """The job ids of an input, in order; ``reused`` of them were enqueued before (the same
    idempotency key within CTQ_IDEMPOTENCY_WINDOW) and are not enqueued again."""

    reused: int = 0


class StagingExpired(CtqError):
    """The staging area expired before the commit (the input was read too slowly)."""


def committed(reply: list[Any]) -> bool:
    """Whether ``commit_batch`` wrote anything: not when it refused (a key taken for another
    body, the staging area gone)."""
    return str(reply[0]) not in ("conflict", "missing")


class CommitUncertain(Exception):
    """The connection broke while Redis ran (or not) the commit."""


@dataclass
class Staged:
    """One chunk's new jobs, as they are written to the staging area."""

    entries: list[dict[str, Any]] = field(default_factory=list)  # in input order
    payloads: dict[str, str] = field(default_factory=dict)  # job id -> payload
    messages: dict[str, str] = field(default_factory=dict)  # job id -> kombu's message
    events: dict[str, str] = field(default_factory=dict)  # job id -> its task-sent event


@dataclass
class Commit:
    """A call of ``commit_batch.lua``."""

    keys: list[str]
    args: list[Any]


class Batch:
    """The jobs of one input, staged in chunks and committed together.

    ``add`` each job in input order, then ``commit``; ``discard`` on any failure. Problems
    (an idempotency key used for another payload) go to ``problems``; once there is one,
    nothing more is written.
    """

    def __init__(
        self,
        client: redis.Redis,
        builder: MessageBuilder,
        problems: Problems,
        *,
        window: int,
        not_before: float | None = None,
        ttl: int = STAGING_TTL,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.client, self.builder, self.problems = client, builder, problems
        self.window, self.not_before, self.ttl = window, not_before, ttl
        self.account = account
        # Idempotency keys are the account's own: the same key may name a job of each.
        self._scope = "" if account == DEFAULT_ACCOUNT else f"{account}/"
        self.id = uuid.uuid4().hex
        self.answer = Enqueued()
        self.staged = 0
        self._pending: list[Job] = []
        # Where the task-sent events go (kombu's fanout topic), once one is staged.
        self._events_channel = ""

    def add(self, job: Job) -> None:
        """Take the next job of the input (written once a chunk is full)."""
        if self.problems:
            return  # refused already: the input is only read on for its problems
        self._pending.append(job)
        if len(self._pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write the jobs taken so far: each new one staged, each known key answered."""
        pending, self._pending = self._pending, []
        if not pending or self.problems:
            return
        known = self._lookup(pending)
        staged = Staged()
        now = time.time()
        for kind, payload, name in pending:
            key = self._key(name) if name else None
            stored = known.get(key) if key else None
            if stored:
                self._answer_known(payload, str(name), stored)
            else:
                # A key repeated within the input (identical callbacks) is staged again:
                # the commit keeps the first job of each key and answers it for the others.
                self._stage(kind, payload, key, now, staged)
        if staged.entries and not self.problems:
            self._write(staged)

    def _lookup(self, pending: list[Job]) -> dict[str, str]:
        """What Redis holds for the keys of ``pending``."""
        wanted = list({self._key(n) for _, _, n in pending if n})
        if not wanted:
            return {}
        values: list[str | None] = self.client.mget(wanted)  # type: ignore[assignment]
        return {k: v for k, v in zip(wanted, values, strict=True) if v}

    def _key(self, name: str) -> str:
        return keys.idempotency(self._scope + name)

    def _answer_known(self, payload: dict[str, Any], name: str, stored: str) -> None:
        """A job whose key is taken: the first job's id in its place, unless that job's body
        was another one (then the input is refused)."""
        owner, _, digest = stored.partition(" ")
        if digest and digest != fingerprint(payload):
            self.problems.add(reused_for_another(len(self.answer) + 1, name, owner))
        self.answer.append(owner)
        self.answer.reused += 1

    def _stage(
        self,
        kind: JobKind,
        payload: dict[str, Any],
        key: str | None,
        now: float,
        staged: Staged,
    ) -> None:
        if kind.provider != "calltouch" and self.account != DEFAULT_ACCOUNT:
            self.problems.add(not_an_account_job(len(self.answer) + 1, kind.provider))
            return
        job_id = uuid.uuid4().hex
        fields = jobstore.new_fields(kind.name, kind.lane, payload, now, self.account)
        staged.payloads[job_id] = str(fields.pop("payload"))
        del fields["state"]  # set by the commit: queued, or delayed
        target = keys.queue(kind.lane, self.account)
        command, (queue, body) = self.builder.message(kind.task_name, job_id, target)
        if command != "lpush":
            raise RuntimeError(f"kombu published with {command}, not lpush: cannot stage it")
        staged.messages[job_id] = body
        entry = {
            "id": job_id,
            "pos": len(self.answer) + 1,
            "record": keys.job(job_id),
            "fields": [str(part) for pair in fields.items() for part in pair],
            "key": key or "",
            "value": f"{job_id} {fingerprint(payload)}" if key else "",
            "queue": queue,
            "due": "" if self.not_before is None else f"{self.not_before:.6f}",
        }
        staged.entries.append(entry)
        self.answer.append(job_id)
        for _, (channel, event) in self.builder.sent_event(kind.task_name, job_id, kind.lane):
            self._events_channel, staged.events[job_id] = channel, event

    def _write(self, staged: Staged) -> None:
        # Not a transaction: the staging area is invisible until the commit, and an EXEC
        # here would only stand for the one the commit's lost reply is recognised by.
        with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(keys.batch(self.id), *map(_json, staged.entries))
            pipe.hset(keys.batch_payloads(self.id), mapping=staged.payloads)  # type: ignore[arg-type]
            pipe.hset(keys.batch_messages(self.id), mapping=staged.messages)  # type: ignore[arg-type]
            if staged.events:
                pipe.hset(keys.batch_events(self.id), mapping=staged.events)  # type: ignore[arg-type]
            for key in self._staging_keys():
                pipe.expire(key, self.ttl)
            pipe.execute()
        self.staged += len(staged.entries)

    def _staging_keys(self) -> list[str]:
        return [
            keys.batch(self.id),
            keys.batch_payloads(self.id),
            keys.batch_messages(self.id),
            keys.batch_events(self.id),
        ]

    def commit(self) -> Enqueued:
        """Make every staged job visible at once; the input's job ids, in order.

        Raises ``JobValidationError`` (nothing visible) if the input had a problem,
        ``CommitUncertain`` if the connection broke during the commit (``confirm`` tells).
        """
        if self.fits_at_once():
            call = self.at_once()
            return self.answer if call is None else self._run(call)
        self.flush()
        self.problems.raise_if_any()
        if not self.staged:
            return self.answer
        return self._run(self._call(self.staged, []))

    def fits_at_once(self) -> bool:
        """Whether the jobs taken so far are the whole input of one chunk, nothing staged."""
        return not self.staged and len(self._pending) <= CHUNK

    def at_once(self) -> Commit | None:
        """An input of one chunk (a single callback, a small array) skips the staging area and
        the key lookup: its entries travel in the commit itself, which checks their keys
        anyway, so the whole enqueue is one round trip. The call of that commit (None: no job
        to commit), for ``settle`` to read its reply; raises ``JobValidationError`` for a
        problem. Nothing is sent to Redis here, so an event loop may run it."""
        pending, self._pending = self._pending, []
        staged = Staged()
        now = time.time()
        for kind, payload, name in pending:
            if not self.problems:
                self._stage(kind, payload, self._key(name) if name else None, now, staged)
        self.problems.raise_if_any()
        if not staged.entries:
            return None
        inline = [
            _json(
                {
                    **entry,
                    "payload": staged.payloads[entry["id"]],
                    "message": staged.messages[entry["id"]],
                    "event": staged.events.get(entry["id"], ""),
                }
            )
            for entry in staged.entries
        ]
        return self._call(len(inline), inline)

    def _call(self, count: int, inline: list[str]) -> Commit:
        keys_ = [
            *self._staging_keys()[:3],
            keys.STATS,
            keys.DELAYED,
            keys.batch_receipt(self.id),
            keys.jobs_in(jobstore.State.QUEUED),
            keys.jobs_in(jobstore.State.DELAYED),
            keys.batch_events(self.id),
            keys.account_stats(self.account),
        ]
        args = [count, f"{time.time():.6f}", self.window, RECEIPT_TTL, self._events_channel]
        return Commit(keys_, [*args, *inline])

    async def commit_on(self, client: redis.asyncio.Redis) -> Enqueued:
        """``commit`` for an input of one chunk (``at_once``), its one round trip made on an
        event loop's client."""
        call = self.at_once()
        if call is None:
            return self.answer
        replicas = await failover.point_at_primary_async(client)
        with self._reply_may_be_lost():
            reply = await failover.run_confirmed_async(
                client, "commit_batch", call.keys, call.args, replicas, committed
            )
        return self.settle(reply)

    def _run(self, call: Commit) -> Enqueued:
        replicas = failover.point_at_primary(self.client)
        with self._reply_may_be_lost():
            reply = failover.run_confirmed(
                self.client, "commit_batch", call.keys, call.args, replicas, committed
            )
        return self.settle(reply)

    @contextlib.contextmanager
    def _reply_may_be_lost(self) -> Iterator[None]:
        """A connection that broke during the commit leaves it unknown whether it ran; so
        does a commit its replicas did not confirm (Sentinel: it may be lost in a failover)."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise CommitUncertain(self.id) from exc

    def confirm(self) -> Enqueued | None:
        """After a lost reply: the job ids if the commit ran, None if it did not (read on the
        primary the sentinels name now: a receipt on a primary being replaced does not count)."""
        receipt = failover.confirmed_read(self.client, keys.batch_receipt(self.id), RECEIPT_TTL)
        return None if receipt is None else self.settle(receipt.split(" "))

    def settle(self, reply: list[Any]) -> Enqueued:
        """Read the commit's answer: a dropped job's place gets the id that holds its key."""
        reply = [str(part) for part in reply]
        if reply[0] == "missing":
            raise StagingExpired(
                f"the staged jobs are gone: they expired (the input paused for more than "
                f"{self.ttl} s), or Redis failed over meanwhile"
            )
        if reply[0] == "conflict":
            for pos, key, owner in zip(reply[1::3], reply[2::3], reply[3::3], strict=True):
                name = key.removeprefix(self._key(""))
                self.problems.add(reused_for_another(int(pos), name, owner))
            self.problems.raise_if_any()
        taken = dict(zip(reply[1::2], reply[2::2], strict=True))
        if taken:
            for n, job_id in enumerate(self.answer):
                if job_id in taken:
                    self.answer[n] = taken[job_id]
                    self.answer.reused += 1
        return self.answer

    def discard(self) -> None:
        """Remove the staging area (freed in the background: UNLINK)."""
        self.client.unlink(*self._staging_keys())


def _json(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def reused_for_another(position: int, name: str, owner: str) -> Problem:
    """Refuse a key that was used within the window for a different body (as Stripe does):
    answering with the other job's id would hide that this body was never enqueued."""
    return Problem(
        position,
        "(idempotency key)",
        f"{name!r} was used within CTQ_IDEMPOTENCY_WINDOW for a different payload "
        f"(job {owner}); use a new key for a new job",
    )


def not_an_account_job(position: int, provider: str) -> Problem:
    """Accounts are Calltouch accounts; another provider's jobs use that provider's settings."""
    return Problem(
        position,
        "provider",
        f"a {provider} job belongs to no Calltouch account (it uses the {provider.upper()}_ "
        "settings); enqueue it without an account",
    )
