"""Callback jobs: the auto-dial widget calls a customer. Realtime lane."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tasks.kind import JobKind
from tasks.models import CallbackJob
from worker import keys
from worker.runner import execute

KIND = JobKind(
    name="callback",
    model=CallbackJob,
    path="/widget-service/v1/api/widget-request/user-form/create",
    lane=keys.REALTIME,
    task_name="ctq.callback",
    dedupe_by_body=True,
)


@shared_task(bind=True, name=KIND.task_name)
def send_callback(self: Task[Any, Any], job_id: str) -> str | None:
    return execute(self.app, KIND, job_id)
