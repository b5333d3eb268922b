"""The error answers each operation documents (OpenAPI ``responses``)."""

from __future__ import annotations

from typing import Any

from api.schemas import Detail, Refused

Responses = dict[int | str, dict[str, Any]]

UNAUTHORIZED: Responses = {401: {"model": Detail, "description": "no key, or an unknown one"}}
UNAVAILABLE: Responses = {503: {"model": Detail, "description": "Redis is unreachable"}}
NOT_FOUND: Responses = {404: {"model": Detail, "description": "unknown (or expired)"}}
INVALID: Responses = {
    422: {"model": Refused, "description": "refused: every problem listed, nothing changed"}
}
# FastAPI's answer to a JSON body it cannot decode (only the job bodies are read by ctq).
UNPARSABLE: Responses = {400: {"model": Detail, "description": "the JSON body cannot be parsed"}}
TOO_LARGE: Responses = {
    413: {"model": Detail, "description": "body over CTQ_API_MAX_BODY_BYTES, nothing enqueued"}
}
