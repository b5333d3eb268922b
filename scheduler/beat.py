"""The beat schedule: what runs periodically, and how often."""

from __future__ import annotations

from typing import Any

from worker import keys

DELAY_MOVER_INTERVAL = 1.0


def beat_schedule() -> dict[str, Any]:
    # Each entry expires quickly: a backlog of maintenance ticks is worth nothing.
    return {
        "move-due-jobs": {
            "task": "ctq.move_due_jobs",
            "schedule": DELAY_MOVER_INTERVAL,
            "options": {"queue": keys.MAINTENANCE, "expires": 10},
        },
        "trim-dead-letters": {
            "task": "ctq.trim_dead_letters",
            "schedule": 3600.0,
            "options": {"queue": keys.MAINTENANCE, "expires": 600},
        },
    }
