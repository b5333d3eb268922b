"""Reading a request body within CTQ_API_MAX_BODY_BYTES, and the JSON in it.

The limit is enforced as the body arrives (an ASGI middleware counts every chunk), so a
client cannot make the API buffer more than the limit, whatever its Content-Length says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyTooLarge, detail
from tasks.validation import Problem, Problems, json_lines

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


class BodyLimit:
    """Answer 413 to a body over ``limit`` bytes: at once when Content-Length says so, else
    as soon as the chunks received pass it (``BodyTooLarge`` raised to the endpoint)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await detail(413, str(BodyTooLarge(self.limit)))(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def is_ndjson(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in NDJSON_TYPES


def ndjson_lines(body: bytes) -> list[bytes]:
    """The lines of an NDJSON body, split at "\\n" only (as ``ctq enqueue`` reads a file)."""
    return body.split(b"\n")


def items(body: bytes, content_type: str | None, problems: Problems) -> Iterable[tuple[int, Any]]:
    """``(line, value)`` per job: NDJSON line by line, a JSON array item by item (item N is
    line N), or one JSON object (line 1). Unreadable input is a problem of its line."""
    if is_ndjson(content_type):
        return json_lines(ndjson_lines(body), problems)
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.add(Problem(1, "(json)", _unreadable(exc)))
        return []
    if not isinstance(value, list):
        return [(1, value)]
    if not value:
        problems.add(Problem(1, "(input)", "no jobs: the array is empty"))
    return enumerate(value, start=1)


def _unreadable(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (one object, "
            "an array, or NDJSON with Content-Type: application/x-ndjson)"
        )
    return "not valid UTF-8"
