"""``GET /v1/status`` (what ``ctq status --json`` prints) and ``POST /v1/resume``."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import redis
from fastapi import APIRouter, Depends, Query

from api import backend
from api.responses import UNAVAILABLE
from api.schemas import Resumed
from config import Settings
from worker.breaker import resume
from worker.status import Overview, overview

router = APIRouter(prefix="/v1", tags=["status"])

Client = Annotated[redis.Redis, Depends(backend.client)]


@router.get("/status", responses=UNAVAILABLE, summary="Queues, job counts, limiters, points")
def status(client: Client, settings: Annotated[Settings, Depends(backend.settings)]) -> Overview:
    """What `ctq status --json` prints: queue depths, jobs in each state, dead letters, every
    limiter key, paused lanes, points today, workers alive, Redis memory."""
    return overview(client, settings)


@router.post("/resume", responses=UNAVAILABLE, summary="Lift paused lanes (circuit breakers)")
def resume_lanes(
    client: Client,
    site: Annotated[str | None, Query(description="only this site id")] = None,
    lane: Annotated[Literal["realtime", "bulk"] | None, Query(description="only this lane")] = None,
) -> Resumed:
    """As `ctq resume`: close the open circuit breakers (all, or those of `site` / `lane`) and
    requeue the jobs they held. Fix the cause first (token, callback minutes, service)."""
    return Resumed(resumed=resume(client, time.time(), site, lane))
