"""What ctq needs to know about one kind of job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.models.common import ApiModel


def no_results(body: Any) -> None:
    return None


@dataclass(frozen=True)
class JobKind:
    """A job kind: its model, the API path it is sent to, its lane and Celery task."""

    name: str
    model: type[ApiModel]
    path: str
    lane: str
    task_name: str
    # Extracts what to keep from a successful answer (per-lead results for comments).
    results: Callable[[Any], Any] = no_results
