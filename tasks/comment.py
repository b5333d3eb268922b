"""Lead-comment jobs: up to 100 leads tagged per request. Bulk lane."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from tasks.kind import JobKind
from tasks.models import CommentJob
from worker import keys
from worker.runner import execute


def lead_results(body: Any) -> list[dict[str, Any]]:
    """Per lead, in request order: commented or not, the error, and what it matched."""
    rows = ((body or {}).get("data") or {}).get("comments") or []
    return [
        {
            "commented": bool(row.get("commented")),
            "error": row.get("error"),
            "callId": (row.get("callInfo") or {}).get("callId"),
            "requestId": (row.get("requestInfo") or {}).get("requestId"),
        }
        for row in rows
    ]


KIND = JobKind(
    name="comment",
    model=CommentJob,
    path="/lead-service/v1/api/comment/lead/add",
    lane=keys.BULK,
    task_name="ctq.comment",
    results=lead_results,
)


@shared_task(bind=True, name=KIND.task_name)
def send_comments(self: Task[Any, Any], job_id: str) -> str | None:
    return execute(self.app, KIND, job_id)
