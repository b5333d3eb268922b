"""Pozvonim callback jobs (``"provider": "pozvonim"``): now or delayed. Realtime lane."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tasks.kind import JobKind
from tasks.models.pozvonim import PozvonimCallJob
from worker import keys
from worker.runner import execute


def route(payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``/sites/{site_id}/call`` or ``…/call/delayed``; the site id goes in the path."""
    params = {k: v for k, v in payload.items() if k not in ("provider", "site_id")}
    suffix = "/delayed" if payload.get("delayed") else ""
    return f"/sites/{payload['site_id']}/call{suffix}", params


KIND = JobKind(
    name="pozvonim-call",
    model=PozvonimCallJob,
    path="/sites/{site_id}/call",
    lane=keys.REALTIME,
    task_name="ctq.pozvonim_call",
    provider="pozvonim",
    dedupe_by_body=True,
    route=route,
)


@shared_task(bind=True, name=KIND.task_name)
def send_pozvonim_call(self: Task[Any, Any], job_id: str) -> str | None:
    return execute(self.app, KIND, job_id)
