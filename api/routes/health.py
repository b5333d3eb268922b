"""``/healthz`` (the process answers; no key needed) and ``/readyz`` (Redis answers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import backend
from api.responses import UNAVAILABLE
from api.schemas import Health

open_router = APIRouter(tags=["health"])
router = APIRouter(tags=["health"])


@open_router.get("/healthz", summary="The API process is up (no key needed)")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", responses=UNAVAILABLE, summary="Redis answers: jobs can be enqueued")
async def readyz(request: Request) -> Health:
    client = await run_in_threadpool(backend.client, request)
    await run_in_threadpool(client.ping)
    return Health(status="ok")
