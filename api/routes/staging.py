"""``POST /v1/stage/comment``: leads staged for the nightly run (``ctq stage comment``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api import backend
from api.accounts import AccountName, account_of
from api.body import is_ndjson, items, ndjson_lines
from api.openapi import request_body
from api.responses import INVALID, TOO_LARGE, UNAVAILABLE
from api.schemas import Staged
from tasks.producer import Producer
from tasks.validation import Problems

router = APIRouter(prefix="/v1/stage", tags=["nightly"])


def stage(producer: Producer, body: bytes, content_type: str | None, account: str) -> int:
    """The same producer calls as ``ctq stage comment``; how many leads are staged now."""
    if is_ndjson(content_type):
        return producer.stage_comment_lines(ndjson_lines(body), account=account)
    problems = Problems()
    leads = [lead for _, lead in items(body, content_type, problems)]
    problems.raise_if_any()
    return producer.stage_comments(leads, account=account)


@router.post(
    "/comment",
    responses={**INVALID, **TOO_LARGE, **UNAVAILABLE},
    summary="Stage lead comments for the nightly run",
    openapi_extra={"requestBody": request_body("comment")},
)
async def stage_comments(request: Request, account: AccountName = None) -> Staged:
    """Validate leads (as for `POST /v1/jobs/comment`) and stage them, all or nothing, for the
    nightly run at CTQ_NIGHTLY_AT; answers how many leads (of the account) are staged now."""
    settings = backend.settings(request)
    whose = account_of(account, settings)
    body = await request.body()
    producer = await run_in_threadpool(backend.producer, request)
    content_type = request.headers.get("content-type")
    staged = await run_in_threadpool(stage, producer, body, content_type, whose)
    return Staged(staged=staged, nightly_at=f"{settings.nightly_at} {settings.timezone}")
