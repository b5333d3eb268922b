"""``POST /v1/jobs/{kind}`` (what ``ctq enqueue`` does) and ``GET /v1/jobs/{id}``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import backend
from api.accounts import AccountName, account_of
from api.backend import Backend
from api.body import is_ndjson, items, ndjson_lines
from api.openapi import request_body
from api.responses import INVALID, NOT_FOUND, TOO_LARGE, UNAVAILABLE
from api.schemas import Enqueued
from config import Settings
from tasks import send_time
from tasks.registry import ENQUEUE_KINDS
from tasks.validation import JobValidationError, Problem, Problems, json_lines
from worker.status import JobDetail, job_detail

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

ENQUEUE_HELP = """Validate the jobs and enqueue them, all or nothing, as `ctq enqueue {kind}`
does: one JSON object, a JSON array of them, or NDJSON (`Content-Type: application/x-ndjson`,
one a line). {what} Answers one job id per job, in order.

With `Idempotency-Key` the jobs are enqueued once per CTQ_IDEMPOTENCY_WINDOW (job N of several
is `KEY:N`); the same request again answers the first ids (`reused` counts them), the same key
with another body is refused (422). Without one, each job's key is derived from its content,
so a request sent again (after a timeout) enqueues nothing twice."""

WHAT = {
    "callback": 'A line with `"provider": "pozvonim"` is a Pozvonim call. Identical '
    "callbacks within the window call once.",
    "comment": "One lead a line; ctq packs up to 100 leads per request (one job id each).",
    "pool-update": "One number a line.",
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="enqueue at most once per CTQ_IDEMPOTENCY_WINDOW",
    ),
]
# A string, not a datetime: pydantic would also take a number as a unix time. The pattern is
# for the schema; not_before checks it, with a reason a person can read.
At = Annotated[
    str | None,
    Query(
        json_schema_extra={"pattern": send_time.ISO_8601},
        description="send no earlier than this ISO 8601 time, e.g. 2026-11-23T10:00:00+03:00 "
        "(CTQ_TIMEZONE if it has no offset); the jobs wait in the durable delay set, like "
        "`ctq enqueue --at`",
    ),
]


def not_before(at: str | None, settings: Settings) -> float | None:
    if at is None:
        return None
    try:
        return send_time.timestamp(at, settings.tz)
    except ValueError as exc:
        raise JobValidationError([Problem(0, "query.at", str(exc))]) from None


# A body this small holds a job or a few: read, checked and committed in the event loop
# (``Backend.enqueue_at_once``), as a thread hop costs more than that work.
AT_ONCE_BYTES = 4096


def parsed(
    body: bytes, content_type: str | None, problems: Problems, settings: Settings
) -> Iterable[tuple[int, Any]]:
    """``(line, value)`` per job, as ``ctq enqueue`` reads them (NDJSON lines as a file's)."""
    if is_ndjson(content_type):
        return json_lines(ndjson_lines(body), problems, settings.max_line_bytes)
    return items(body, content_type, problems)


def enqueue(
    state: Backend,
    kind: str,
    body: bytes,
    content_type: str | None,
    key: str | None,
    when: float | None,
    account: str,
) -> Enqueued:
    """The same producer call as ``ctq enqueue``: lines as they are, or parsed JSON items."""
    producer = state.producer()
    problems = Problems()
    items_ = parsed(body, content_type, problems, state.settings)
    ids = producer.from_items(kind, items_, problems, key, when, account)
    return Enqueued(job_ids=list(ids), reused=ids.reused)


def _enqueue_route(kind: str) -> None:
    async def post(
        request: Request,
        idempotency_key: IdempotencyKey = None,
        at: At = None,
        account: AccountName = None,
    ) -> JSONResponse:
        settings = backend.settings(request)
        whose = account_of(account, settings)
        body = await request.body()
        when = not_before(at, settings)
        content_type = request.headers.get("content-type")
        state = backend.backend(request)
        answer = None
        if len(body) <= AT_ONCE_BYTES:
            problems = Problems()
            items_ = parsed(body, content_type, problems, settings)
            ids = await state.enqueue_at_once(kind, items_, problems, idempotency_key, when, whose)
            if ids is not None:
                answer = Enqueued(job_ids=list(ids), reused=ids.reused)
        if answer is None:
            # The producer (blocking redis-py) runs in the threadpool.
            answer = await run_in_threadpool(
                enqueue, state, kind, body, content_type, idempotency_key, when, whose
            )
        return JSONResponse(answer.model_dump(), status_code=202)

    router.add_api_route(
        f"/{kind}",
        post,
        methods=["POST"],
        status_code=202,
        response_model=Enqueued,
        responses={**INVALID, **TOO_LARGE, **UNAVAILABLE},
        summary=f"Enqueue {kind} jobs",
        description=ENQUEUE_HELP.format(kind=kind, what=WHAT[kind]),
        operation_id=f"enqueue_{kind.replace('-', '_')}",
        openapi_extra={"requestBody": request_body(kind)},
    )


for _kind in ENQUEUE_KINDS:
    _enqueue_route(_kind)


@router.post("/{kind}", include_in_schema=False)
def unknown_kind(kind: str) -> None:
    """Any other kind: say which there are (else the job route would answer 405)."""
    raise HTTPException(404, f"no job kind {kind!r}; kinds: {', '.join(ENQUEUE_KINDS)}")


@router.get(
    "/{job_id}",
    responses={**NOT_FOUND, **UNAVAILABLE},
    summary="One job: state, attempts, last outcome, per-lead results",
    response_model_exclude_unset=True,  # leads and lead_results for comments only
)
def get_job(job_id: str, client: Annotated[redis.Redis, Depends(backend.client)]) -> JobDetail:
    """What `ctq status JOB_ID --json` prints."""
    found = job_detail(client, job_id)
    if found is None:
        raise HTTPException(
            404, f"no job {job_id} (unknown, or expired after the retention period)"
        )
    return found
