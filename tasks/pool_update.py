"""Pool-update jobs: display and redirect settings of a static number. Realtime lane."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tasks.kind import JobKind
from tasks.models import PoolUpdateJob
from worker import keys
from worker.runner import execute

KIND = JobKind(
    name="pool-update",
    model=PoolUpdateJob,
    path="/phone-service/v1/api/calltracking/ad-platform/phone/update",
    lane=keys.REALTIME,
    task_name="ctq.pool_update",
)


@shared_task(bind=True, name=KIND.task_name)
def send_pool_update(self: Task[Any, Any], job_id: str) -> str | None:
    return execute(self.app, KIND, job_id)
