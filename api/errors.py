"""How failures become answers: 422 with every problem, 413, 503 when Redis is away."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect

from api.schemas import Detail, Problem, Refused
from tasks.batch import StagingExpired
from tasks.producer import QueueUnavailable
from tasks.validation import JobValidationError, field_path
from worker.errors import InvalidInput, NotFound, RedisUnavailable
from worker.redis_health import EvictingRedis

log = logging.getLogger(__name__)
# nginx's code for a request its client abandoned; nobody reads this answer.
CLIENT_CLOSED = 499


class BodyTooLarge(Exception):
    """The request body is over CTQ_API_MAX_BODY_BYTES."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"request body over {limit} bytes (CTQ_API_MAX_BODY_BYTES): split the input; "
            "nothing was enqueued"
        )


def refused(problems: list[Problem], more: int = 0) -> JSONResponse:
    return JSONResponse(Refused(problems=problems, more=more).model_dump(), status_code=422)


def detail(status_code: int, message: str) -> JSONResponse:
    return JSONResponse(Detail(detail=message).model_dump(), status_code=status_code)


async def _invalid_input(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobValidationError)
    problems = [Problem(line=p.line, field=p.path, reason=p.reason) for p in exc.problems]
    return refused(problems, exc.more)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # A bad parameter or header: line 0, the request itself, in the same shape as a bad line.
    assert isinstance(exc, RequestValidationError)
    problems = [
        Problem(line=0, field=field_path(err["loc"]), reason=str(err["msg"]))
        for err in exc.errors()
    ]
    return refused(problems)


async def _refused_request(request: Request, exc: Exception) -> JSONResponse:
    # Invalid input that is not about one line (a file that is not CSV, a finished campaign):
    # line 0, like a bad parameter.
    return refused([Problem(line=0, field="(request)", reason=str(exc))])


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return detail(404, str(exc))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    message = str(exc)
    if isinstance(exc, RedisError):
        message = f"Redis is unreachable ({exc}); nothing was changed"
    return detail(503, message)


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return detail(413, str(exc))


async def _expired(request: Request, exc: Exception) -> JSONResponse:
    return detail(503, f"{exc}; nothing was enqueued")


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    # A client that hangs up mid-body (a timeout, a killed load generator) is no server error.
    log.info(
        "%s %s: the client closed the connection before its body arrived; nothing was changed",
        request.method,
        request.url.path,
    )
    return detail(CLIENT_CLOSED, "the client closed the connection; nothing was changed")


def install(app: FastAPI) -> None:
    # Starlette picks the handler of the most specific class: JobValidationError (its
    # problems) before the InvalidInput it is.
    app.add_exception_handler(JobValidationError, _invalid_input)
    app.add_exception_handler(InvalidInput, _refused_request)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(StagingExpired, _expired)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    for unavailable in (QueueUnavailable, RedisUnavailable, RedisError, EvictingRedis):
        app.add_exception_handler(unavailable, _unavailable)
