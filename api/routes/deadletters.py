"""Dead letters: list, show, replay, purge (``ctq dlq``)."""

from __future__ import annotations

from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, HTTPException, Query

from api import backend
from api.responses import INVALID, NOT_FOUND, UNAVAILABLE
from api.schemas import Problem, Purged, Replayed, Selection
from tasks.producer import Producer
from tasks.replay import choose, replay
from worker import deadletter

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])

Client = Annotated[redis.Redis, Depends(backend.client)]


@router.get("", responses=UNAVAILABLE, summary="Dead letters, newest first")
def list_dead_letters(
    client: Client, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[dict[str, Any]]:
    """Each keeps the payload (secrets redacted), the API's code and message, attempts, times."""
    return deadletter.list_records(client, limit)


@router.get("/{job_id}", responses={**NOT_FOUND, **UNAVAILABLE}, summary="One dead letter")
def show_dead_letter(job_id: str, client: Client) -> dict[str, Any]:
    record = deadletter.get(client, job_id)
    if record is None:
        raise HTTPException(404, f"no dead letter {job_id}")
    return record


@router.post(
    "/replay",
    responses={**INVALID, **NOT_FOUND, **UNAVAILABLE},
    summary="Validate dead letters again and enqueue them as new jobs",
)
def replay_dead_letters(
    selection: Selection, producer: Annotated[Producer, Depends(backend.producer)]
) -> Replayed:
    """As `ctq dlq replay`: a refused payload stays a dead letter and is listed with why.
    Replaying one twice enqueues it once: the new job and the removal are one transaction."""
    chosen = choose(producer.redis, selection.ids, selection.all, selection.code, "replayed")
    result = replay(producer, chosen)
    refused = {
        old: [Problem(line=p.line, field=p.path, reason=p.reason) for p in problems]
        for old, problems in result.refused.items()
    }
    return Replayed(enqueued=result.enqueued, refused=refused, gone=result.gone)


@router.post(
    "/purge", responses={**INVALID, **NOT_FOUND, **UNAVAILABLE}, summary="Delete dead letters"
)
def purge_dead_letters(selection: Selection, client: Client) -> Purged:
    chosen = choose(client, selection.ids, selection.all, selection.code, "purged")
    removed = deadletter.remove(client, [r["id"] for r in chosen])
    return Purged(purged=removed)
