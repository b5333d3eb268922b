"""Celery messages built by Celery and kombu, but written in ctq's own Redis transaction.

``Producer.enqueue`` must write job records and their queue messages all-or-nothing. kombu's
Redis transport turns a published message into ``LPUSH`` commands, and lets a publish batch
collect those commands instead of running them (``_publish_batch``); we collect them and run
them inside our ``MULTI``. The message format is therefore exactly kombu's own.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import serialization

Command = tuple[str, tuple[Any, ...]]


class _CommandCollector:
    """Stands in for kombu's ``PublishBatch``: records the Redis commands of one publish."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def add(self, name: str, *args: Any) -> None:
        self.commands.append((name, args))


class MessageBuilder:
    """Builds the Redis commands that put a task message for a job on a queue."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        # Fail fast: a producer facing a dead Redis must report it, not retry for seconds.
        self._connection = app.connection_for_write(transport_options={"max_retries": 1})

    def commands(self, task_name: str, job_id: str, queue: str) -> list[Command]:
        """Commands that put task ``task_name(job_id)`` on ``queue``; task id = job id."""
        task = self.app.amqp.create_task_message(job_id, task_name, (job_id,), {})
        content_type, encoding, body = serialization.dumps(task.body, serializer="json")
        # kombu's Redis channel: ``StdChannel``, its declared type, has no publish methods.
        channel: Any = self._connection.default_channel
        message = channel.prepare_message(
            body, 0, content_type, encoding, task.headers, dict(task.properties, delivery_mode=2)
        )
        collector = _CommandCollector()
        channel.basic_publish(message, exchange="", routing_key=queue, _publish_batch=collector)
        return collector.commands

    def close(self) -> None:
        self._connection.release()
