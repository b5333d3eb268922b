"""Periodic maintenance tasks, sent by beat to the ``maintenance`` queue."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task

from scheduler.delay_mover import move_due
from worker import deadletter, keys
from worker.messages import MessageBuilder
from worker.runtime import runtime_of

# Beat sends these as a clock ticks; Celery's lines about them are DEBUG (cli.logs), so each
# says at INFO only when it did something.
log = logging.getLogger(__name__)


@shared_task(bind=True, name="ctq.move_due_jobs")
def move_due_jobs(self: Task[Any, Any]) -> int:
    rt = runtime_of(self.app)
    rt.redis.set(keys.BEAT_TICK, rt.clock())  # `ctq status` tells when beat last ticked
    builder = MessageBuilder(self.app)
    try:
        return move_due(rt.redis, builder, rt.clock())
    finally:
        builder.close()


@shared_task(bind=True, name="ctq.trim_dead_letters")
def trim_dead_letters(self: Task[Any, Any]) -> int:
    rt = runtime_of(self.app)
    days = rt.settings.dlq_retention_days
    removed = deadletter.purge_older_than(rt.redis, time.time() - days * 86400)
    if removed:
        log.info("%d dead letter(s) older than %d days deleted", removed, days)
    return removed


@shared_task(bind=True, name="ctq.nightly")
def nightly(self: Task[Any, Any]) -> dict[str, Any]:
    """The nightly lead-tagging run (once per day, whatever the number of beats)."""
    from scheduler.nightly import scheduled_run  # imports the producer, which imports the app
    from tasks.producer import Producer

    rt = runtime_of(self.app)
    with Producer(rt.settings, app=self.app) as producer:
        return scheduled_run(producer).as_dict()


@shared_task(bind=True, name="ctq.release_campaigns")
def release_campaigns(self: Task[Any, Any]) -> dict[str, int]:
    """Release the due callbacks of every active campaign whose window is open."""
    from scheduler import campaigns  # imports the producer, which imports the app
    from tasks.producer import Producer

    rt = runtime_of(self.app)
    with Producer(rt.settings, app=self.app) as producer:
        released = campaigns.release_due(
            producer, campaigns.utcnow(), rt.settings.campaign_phone_interval
        )
    for name, count in released.items():
        if count:
            log.info("campaign %s: %d callback(s) released", name, count)
    return released
