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
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from config import Settings
from tasks.kind import JobKind
from tasks.models import CommentJob, CommentLead
from tasks.models.comment import MAX_LEADS_PER_REQUEST
from tasks.models.common import ApiModel
from tasks.registry import KINDS
from tasks.validation import parse_json_lines, validate, validate_all
from worker import delays, jobstore, keys
from worker.messages import MessageBuilder
from worker.redis_conn import connect, redis_url


class QueueUnavailable(RuntimeError):
    """Redis could not be reached; nothing was enqueued."""


class Producer:
    """Enqueues validated jobs. Invalid input raises ``JobValidationError`` (nothing enqueued);
    an unreachable Redis raises ``QueueUnavailable`` (nothing enqueued)."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        from worker.celery_app import create_app  # the app imports the tasks, which import us

        self.settings = settings
        self._url = redis_url(settings)
        self.redis = connect(settings, self._url)
        self.app = app or create_app(settings, self._url)

    def callback(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> str:
        """Enqueue one callback. Without a key, an identical callback enqueued within
        CTQ_IDEMPOTENCY_WINDOW returns the first one's job id instead of calling twice."""
        return self._enqueue_one("callback", data, idempotency_key, not_before)

    def pool_update(
        self,
        data: dict[str, Any] | ApiModel,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> str:
        return self._enqueue_one("pool-update", data, idempotency_key, not_before)

    def comments(
        self, leads: Iterable[dict[str, Any] | CommentLead], *, idempotency_key: str | None = None
    ) -> list[str]:
        """Enqueue leads to comment, packed up to 100 per request; one job id per request.
        With a key, request N of this input is known as ``KEY:N``."""
        valid = validate_all(CommentLead, enumerate(leads, start=1))
        return self._enqueue_many(KINDS["comment"], pack_leads(valid), idempotency_key, None)

    def from_json_lines(
        self,
        kind_name: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        not_before: float | None = None,
    ) -> list[str]:
        """Enqueue JSONL input (one job per line; one lead per line for comments). With a
        key, the job of line (or request) N is known as ``KEY:N``."""
        items = parse_json_lines(text)
        kind = KINDS[kind_name]
        if kind_name == "comment":
            bodies: Sequence[ApiModel] = pack_leads(validate_all(CommentLead, items))
        else:
            bodies = validate_all(kind.model, items)
        return self._enqueue_many(kind, bodies, idempotency_key, not_before)

    def _enqueue_one(
        self,
        kind_name: str,
        data: dict[str, Any] | ApiModel,
        key: str | None,
        not_before: float | None,
    ) -> str:
        kind = KINDS[kind_name]
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(kind, [body], [key], not_before=not_before)[0]

    def _enqueue_many(
        self,
        kind: JobKind,
        bodies: Sequence[ApiModel],
        key: str | None,
        not_before: float | None,
    ) -> list[str]:
        if key is None:
            names: list[str | None] | None = None
        elif len(bodies) == 1:
            names = [key]
        else:
            names = [f"{key}:{n}" for n in range(1, len(bodies) + 1)]
        return self.enqueue(kind, bodies, names, not_before=not_before)

    def enqueue(
        self,
        kind: JobKind,
        bodies: Sequence[ApiModel],
        idempotency_keys: Sequence[str | None] | None = None,
        *,
        not_before: float | None = None,
    ) -> list[str]:
        """Write the job records and their queue messages in one Redis transaction.

        A body whose idempotency key was used within CTQ_IDEMPOTENCY_WINDOW is not enqueued
        again: its place in the answer holds the first job's id. With ``not_before`` (unix
        time) the jobs wait in the durable delay set until then.
        """
        payloads = [body.model_dump(mode="json", exclude_none=True) for body in bodies]
        names = list(idempotency_keys or [None] * len(bodies))
        if kind.name == "callback":
            names = [
                name or auto_key(kind.name, p) for name, p in zip(names, payloads, strict=True)
            ]
        try:
            builder = MessageBuilder(self.app)
            try:
                return self._write(kind, payloads, names, builder, not_before)
            finally:
                builder.close()
        except (redis.ConnectionError, redis.TimeoutError, OperationalError, OSError) as exc:
            raise QueueUnavailable(f"Redis is unreachable ({exc}); nothing was enqueued") from exc

    def _write(
        self,
        kind: JobKind,
        payloads: list[dict[str, Any]],
        names: list[str | None],
        builder: MessageBuilder,
        not_before: float | None,
    ) -> list[str]:
        idem = [keys.idempotency(name) if name else None for name in names]
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    return self._write_once(pipe, kind, payloads, idem, builder, not_before)
                except redis.WatchError:
                    continue  # another producer used one of the keys meanwhile: look again

    def _write_once(
        self,
        pipe: redis.client.Pipeline,
        kind: JobKind,
        payloads: list[dict[str, Any]],
        idem: list[str | None],
        builder: MessageBuilder,
        not_before: float | None,
    ) -> list[str]:
        watched = sorted({key for key in idem if key})
        known: dict[str, str] = {}
        if watched:
            pipe.watch(*watched)
            known = {k: str(v) for k, v in zip(watched, pipe.mget(watched), strict=True) if v}
        now = time.time()
        job_ids: list[str] = []
        pipe.multi()
        for payload, key in zip(payloads, idem, strict=True):
            if key and key in known:
                job_ids.append(known[key])
                continue
            job_id = uuid.uuid4().hex
            job_ids.append(job_id)
            if key:
                known[key] = job_id
                pipe.set(key, job_id, ex=self.settings.idempotency_window)
            fields = jobstore.new_fields(kind.name, kind.lane, payload, now)
            if not_before is not None and not_before > now:
                fields["state"] = jobstore.State.DELAYED
                delays.park(pipe, job_id, not_before)
            else:
                for name, args in builder.commands(kind.task_name, job_id, kind.lane):
                    getattr(pipe, name)(*args)
            pipe.hset(keys.job(job_id), mapping=fields)
            pipe.hincrby(keys.STATS, str(fields["state"]), 1)
        pipe.execute()
        return job_ids

    def close(self) -> None:
        self.redis.close()


def auto_key(kind: str, payload: dict[str, Any]) -> str:
    """The default idempotency key of a job: its kind and a hash of its body."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"auto:{kind}:{hashlib.sha256(canonical.encode()).hexdigest()}"


def pack_leads(leads: Sequence[CommentLead]) -> list[CommentJob]:
    """Leads in input order, up to 100 per request."""
    step = MAX_LEADS_PER_REQUEST
    return [CommentJob(comments=list(leads[i : i + step])) for i in range(0, len(leads), step)]
