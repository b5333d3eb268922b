"""The producer API: validate, then enqueue all-or-nothing.

producer = Producer(Settings())
job_id = producer.callback({"routeKey": "rk", "phone": "79991234567"})
job_ids = producer.comments(leads)          # packed 100 leads per request
"""

from __future__ import annotations

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
from worker import jobstore, keys
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

    def callback(self, data: dict[str, Any] | ApiModel) -> str:
        return self._enqueue_one("callback", data)

    def pool_update(self, data: dict[str, Any] | ApiModel) -> str:
        return self._enqueue_one("pool-update", data)

    def comments(self, leads: Iterable[dict[str, Any] | CommentLead]) -> list[str]:
        """Enqueue leads to comment, packed up to 100 per request; one job id per request."""
        valid = validate_all(CommentLead, enumerate(leads, start=1))
        return self.enqueue(KINDS["comment"], pack_leads(valid))

    def from_json_lines(self, kind_name: str, text: str) -> list[str]:
        """Enqueue JSONL input (one job per line; one lead per line for comments)."""
        items = parse_json_lines(text)
        if kind_name == "comment":
            return self.enqueue(KINDS["comment"], pack_leads(validate_all(CommentLead, items)))
        kind = KINDS[kind_name]
        return self.enqueue(kind, validate_all(kind.model, items))

    def _enqueue_one(self, kind_name: str, data: dict[str, Any] | ApiModel) -> str:
        kind = KINDS[kind_name]
        body = data if isinstance(data, kind.model) else validate(kind.model, data)
        return self.enqueue(kind, [body])[0]

    def enqueue(self, kind: JobKind, bodies: Sequence[ApiModel]) -> list[str]:
        """Write the job records and their queue messages in one Redis transaction."""
        now = time.time()
        job_ids = [uuid.uuid4().hex for _ in bodies]
        try:
            builder = MessageBuilder(self.app)
            try:
                with self.redis.pipeline(transaction=True) as pipe:
                    for job_id, body in zip(job_ids, bodies, strict=True):
                        payload = body.model_dump(mode="json", exclude_none=True)
                        pipe.hset(
                            keys.job(job_id),
                            mapping=jobstore.new_fields(kind.name, kind.lane, payload, now),
                        )
                        for name, args in builder.commands(kind.task_name, job_id, kind.lane):
                            getattr(pipe, name)(*args)
                    pipe.hincrby(keys.STATS, jobstore.State.QUEUED, len(job_ids))
                    pipe.execute()
            finally:
                builder.close()
        except (redis.ConnectionError, redis.TimeoutError, OperationalError, OSError) as exc:
            raise QueueUnavailable(f"Redis is unreachable ({exc}); nothing was enqueued") from exc
        return job_ids

    def close(self) -> None:
        self.redis.close()


def pack_leads(leads: Sequence[CommentLead]) -> list[CommentJob]:
    """Leads in input order, up to 100 per request."""
    step = MAX_LEADS_PER_REQUEST
    return [CommentJob(comments=list(leads[i : i + step])) for i in range(0, len(leads), step)]
