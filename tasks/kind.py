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
    provider: str = "calltouch"
    # Without an idempotency key, an identical body within the window is enqueued once.
    dedupe_by_body: bool = False
    # The path and parameters of one job's request, when they depend on its body.
    route: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]] | None = None

    def request(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return self.route(payload) if self.route else (self.path, payload)
