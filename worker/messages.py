"""Celery messages built by Celery and kombu, but written in ctq's own Redis transaction.

``Producer.enqueue`` must write job records and their queue messages all-or-nothing. kombu's
Redis transport turns a published message into ``LPUSH`` commands, and lets a publish batch
collect those commands instead of running them (``_publish_batch``); we collect them and run
them inside our ``MULTI``. The message format is therefore exactly kombu's own.

Celery sends a ``task-sent`` event (what Flower shows a queued task by) only from its own
``send_task``; with ``task_send_sent_event`` on, the builder makes that event too, as the
``PUBLISH`` Celery would send, run in the same transaction as the message (``commit_batch.lua``
publishes the staged ones for the jobs it queues): an event only for a message written.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.events import Event
from celery.utils.time import utcoffset
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
        self.sends_events = bool(app.conf.task_send_sent_event)
        # Only for its host name, exchange and serializer: it sends nothing itself.
        self._events = app.events.Dispatcher(connection=self._connection, enabled=False)
        self._exchange_declared = False

    def commands(self, task_name: str, job_id: str, queue: str) -> list[Command]:
        """The commands that put task ``task_name(job_id=job_id)`` on ``queue`` (task id =
        job id), then its ``task-sent`` event if events are on: run them in one transaction."""
        return [self.message(task_name, job_id, queue), *self.sent_event(task_name, job_id, queue)]

    def message(self, task_name: str, job_id: str, queue: str) -> Command:
        """The ``LPUSH`` of the task message alone. The job id is a keyword argument, so
        Flower and Celery's logs show what it is (the tasks take it either way)."""
        kwargs = {"job_id": job_id}
        # The reprs given, so Celery does not build them with saferepr for every message.
        task = self.app.amqp.create_task_message(
            job_id, task_name, (), kwargs, argsrepr="()", kwargsrepr=repr(kwargs)
        )
        content_type, encoding, body = serialization.dumps(task.body, serializer="json")
        message = self._channel.prepare_message(
            body, 0, content_type, encoding, task.headers, dict(task.properties, delivery_mode=2)
        )
        collector = _CommandCollector()
        self._channel.basic_publish(
            message, exchange="", routing_key=queue, _publish_batch=collector
        )
        [command] = collector.commands
        return command

    def sent_event(self, task_name: str, job_id: str, queue: str) -> list[Command]:
        """The ``PUBLISH`` of the ``task-sent`` event Celery's ``send_task`` would send for
        this message (fields as in ``celery.app.amqp``); nothing with events off."""
        if not self.sends_events:
            return []
        dispatcher = self._events
        event = Event(
            "task-sent",
            uuid=job_id,
            root_id=job_id,
            parent_id=None,
            name=task_name,
            args="()",
            kwargs=repr({"job_id": job_id}),
            retries=0,
            eta=None,
            expires=None,
            queue=queue,
            exchange="",
            routing_key=queue,
            hostname=dispatcher.hostname,
            pid=dispatcher.pid,
            clock=dispatcher.clock.forward(),
            utcoffset=utcoffset(),
        )
        content_type, encoding, body = serialization.dumps(event, dispatcher.serializer)
        channel, exchange = self._channel, dispatcher.exchange
        message = channel.prepare_message(
            body, 0, content_type, encoding, dispatcher.headers, {"delivery_mode": 1}
        )
        if not self._exchange_declared:  # kombu routes by the exchange's type, kept in memory
            channel.exchange_declare(exchange.name, exchange.type, durable=True)
            self._exchange_declared = True
        collector = _CommandCollector()
        channel.basic_publish(
            message, exchange=exchange.name, routing_key="task.sent", _publish_batch=collector
        )
        return collector.commands

    @property
    def _channel(self) -> Any:
        # kombu's Redis channel: ``StdChannel``, its declared type, has no publish methods.
        return self._connection.default_channel

    def close(self) -> None:
        self._connection.release()
