"""A worker without ctq's shared limiter, for benchmark a) only: what a team gets from
Celery's own ``rate_limit`` (per worker instance, celery#5732). ctq itself always sends through
the shared limiter; this module is the one place the comparison lives.

``python -m benchmarks.native_worker [celery worker options]``, in the environment of
``ctq worker``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import uuid
from typing import Any

from celery.signals import worker_process_init

from cli.processes import wait_for_a_safe_redis
from config import Settings
from tasks.registry import KINDS
from worker import keys
from worker.celery_app import create_app
from worker.limiter import ALONE, ComeBack, Limiter, Permit, PointsClaim, Share
from worker.runtime import CtqApp


class CeleryNativeLimiter(Limiter):
    """Stands in for the shared limiter: every permit at once (Celery's ``rate_limit`` paces
    the tasks of this worker), and a 429 waits out Retry-After, or one window, in the task, as
    ``self.retry(countdown=...)`` would."""

    def acquire(
        self,
        lane: str,
        claim: PointsClaim,
        max_wait: float = math.inf,
        share: Share = ALONE,
    ) -> Permit | ComeBack | None:
        return Permit(uuid.uuid4().hex, 0, claim)

    def cancel(self, permit: Permit) -> None:
        pass

    def observe(self, round_trip: float | None) -> int:
        return 0

    def pause(self, seconds: float | None) -> float:
        time.sleep(seconds if seconds is not None else self.window_us / 1_000_000)
        return 0.0


def native_app(settings: Settings) -> CtqApp:
    app = create_app(settings)
    per_second = settings.rate.amount / settings.rate.get_expiry()
    app.conf.task_annotations = {
        kind.task_name: {"rate_limit": f"{per_second}/s"} for kind in KINDS.values()
    }

    def without_shared_limiter(**_: Any) -> None:
        shared = app.runtime.limiter
        native = CeleryNativeLimiter(shared.client, shared.key, settings.rate, margin=0)
        app._runtime = dataclasses.replace(app.runtime, limiter=native)

    worker_process_init.connect(without_shared_limiter, weak=False)
    return app


def main() -> None:
    settings = Settings()
    wait_for_a_safe_redis(settings)
    app = native_app(settings)
    app.worker_main(["worker", "-Q", ",".join(keys.CONSUME_ORDER), "-l", "INFO", *sys.argv[1:]])


if __name__ == "__main__":
    main()
