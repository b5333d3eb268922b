"""The beat schedule: what runs periodically, and how often."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from config import Settings
from worker import keys

DELAY_MOVER_INTERVAL = 1.0
CAMPAIGN_INTERVAL = 5.0
# The maintenance tasks beat sends as a clock ticks (logged at DEBUG); the nightly run is not
# one of them: once a day, and it sends jobs.
TICK_TASKS = frozenset({"ctq.move_due_jobs", "ctq.release_campaigns", "ctq.trim_dead_letters"})


def beat_schedule(settings: Settings) -> dict[str, Any]:
    # Maintenance entries expire quickly: a backlog of ticks is worth nothing.
    hour, minute = settings.nightly_at.split(":")
    return {
        "nightly-lead-tagging": {
            "task": "ctq.nightly",
            "schedule": crontab(hour=hour, minute=minute),  # in CTQ_TIMEZONE (app timezone)
            "options": {"queue": keys.MAINTENANCE, "expires": 3600},
        },
        "move-due-jobs": {
            "task": "ctq.move_due_jobs",
            "schedule": DELAY_MOVER_INTERVAL,
            "options": {"queue": keys.MAINTENANCE, "expires": 10},
        },
        "release-campaigns": {
            "task": "ctq.release_campaigns",
            "schedule": CAMPAIGN_INTERVAL,
            "options": {"queue": keys.MAINTENANCE, "expires": 30},
        },
        "trim-dead-letters": {
            "task": "ctq.trim_dead_letters",
            "schedule": 3600.0,
            "options": {"queue": keys.MAINTENANCE, "expires": 600},
        },
    }
