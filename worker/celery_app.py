"""The Celery app: Redis broker, two lanes, late acks; tasks stay thin."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import current_app
from celery.signals import worker_process_init, worker_ready
from kombu import Exchange, Queue

from config import Settings
from scheduler.beat import beat_schedule
from tasks.registry import TASK_MODULES
from worker import broker, keys
from worker.lost_messages import LostMessageSweep
from worker.messages import MessageBuilder
from worker.recovery import start_recovering
from worker.redis_conn import broker_url, connect, redis_url
from worker.runtime import CtqApp, runtime_of

# How often each worker looks for messages whose job lost its worker (worker.recovery).
RECOVERY_INTERVAL = 1.0


def _queue(name: str) -> Queue:
    # Each queue gets its own direct exchange, so a task sent with `queue=name` lands there.
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def create_app(settings: Settings, url: str | None = None) -> CtqApp:
    """A Celery app bound to ``settings`` (tasks find them through ``worker.runtime``)."""
    url = url or redis_url(settings)
    broker.install()
    app = CtqApp(settings, url, broker=broker_url(url), set_as_current=True)
    app.conf.update(
        include=[*TASK_MODULES, "scheduler.maintenance"],
        task_queues=[_queue(name) for name in keys.consume_order(settings.accounts)],
        task_default_queue=keys.REALTIME,
        task_serializer="json",
        accept_content=["json"],
        # No result backend: job state lives in ctq's own records (worker/jobstore.py).
        task_ignore_result=True,
        # Ack after the job's outcome is recorded, and requeue if the worker process dies:
        # https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.acks_late
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message per process at a time, so a slow job does not hold others hostage, and
        # none taken before a process is free: a prefetched bulk message would otherwise go
        # ahead of a callback that arrives meanwhile (realtime is taken first only if the
        # worker takes it from Redis when a process frees up):
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-disable-prefetch
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,
        broker_transport_options={
            # An unacked message (its worker died) comes back after CTQ_VISIBILITY_TIMEOUT; a
            # live job never runs that long (runner.py parks it durably at half of it). kombu
            # looks for such messages every 5 s (its default: every 100 s).
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            # A freed pool process takes from the first non-empty queue by lane (maintenance,
            # realtime, bulk; kombu's default polls round robin, so a callback waited behind
            # bulk messages), and from the accounts of a lane in turn (worker.broker.LaneCycle):
            # https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
            "queue_order_strategy": "worker.broker:LaneCycle",
            # With REDIS_URL=sentinel://..., the group whose primary the sentinels name.
            "master_name": settings.sentinel_master,
        },
        # Task events, for Flower: a worker's main process publishes received, started and
        # succeeded/failed for each task (a few PUBLISHes, off the path to a permit); the
        # producer publishes task-sent as it enqueues (worker/messages.py):
        # https://docs.celeryq.dev/en/stable/userguide/monitoring.html#events
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        # Redis full (OOM under noeviction) or a read-only replica after a failover are
        # "channel errors" to kombu, fatal to the consumer by default; the worker must wait
        # them out and carry on, as it does for a lost connection. Never give up retrying:
        # https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-channel-error-retry
        broker_channel_error_retry=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        timezone=settings.timezone,
        beat_schedule=beat_schedule(settings),
    )
    return app


@worker_ready.connect
def _recover_stalled_jobs(sender: Any, **_: Any) -> None:
    """In each worker's main process: put back, within seconds, the messages of jobs whose
    worker died (the visibility timeout stays as the backstop), and queue again the jobs whose
    message was lost on its way to a worker."""
    app = sender.app
    settings = app.ctq_settings
    client = connect(settings, app.ctq_redis_url)
    sweep = LostMessageSweep(client, partial(MessageBuilder, app), settings.lost_message_after)
    start_recovering(
        client, RECOVERY_INTERVAL, settings.lease_seconds, lost_messages=sweep.run_if_due
    )


@worker_process_init.connect
def _start_heartbeat(**_: Any) -> None:
    """In each pool process: beat from the start, so idle processes show as alive too."""
    runtime = runtime_of(current_app)
    if runtime.heartbeat:
        runtime.heartbeat.start()
