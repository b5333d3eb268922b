"""Answers the sandbox gives, in the shapes the Calltouch documents show."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import ValidationError

from sandbox.triggers import NO_LEAD_MARKER
from tasks.validation import field_path

_ids = itertools.count(1_000_001)

Answer = tuple[int, Any]


def api_error(code: int, message: str, status: int = 400) -> Answer:
    return status, {
        "meta": [],
        "data": {
            "type": "apiError",
            "apiErrorData": {"errorCode": code, "errorMessage": message},
            "validationErrorData": None,
        },
    }


def validation_error(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> Answer:
    violations = [
        {"fieldPath": field_path((*prefix, *err["loc"])), "message": err["msg"]}
        for err in exc.errors()
    ]
    return 400, {
        "meta": [],
        "data": {
            "type": "validationError",
            "apiErrorData": None,
            "validationErrorData": {"violations": violations},
        },
    }


def callback_created() -> Answer:
    return 200, {"meta": [], "data": {"widgetRequestId": next(_ids)}}


def comments_added(leads: list[dict[str, Any]]) -> Answer:
    return 200, {"meta": [], "data": {"comments": [_comment_result(lead) for lead in leads]}}


def _comment_result(lead: dict[str, Any]) -> dict[str, Any]:
    if NO_LEAD_MARKER in lead["addComment"]:
        return {
            "callInfo": None,
            "requestInfo": None,
            "commented": False,
            "error": "Lead not found",
        }
    row = lead["matching"][0]
    if row["type"] in ("request", "requestContact"):
        request_id = (row.get("requestParams") or {}).get("requestId") or next(_ids)
        info = {"requestId": request_id, "requestNumber": None}
        return {"callInfo": None, "requestInfo": info, "commented": True, "error": None}
    call_id = (row.get("callParams") or {}).get("callId") or next(_ids)
    info = {"callId": call_id, "callReferenceId": None, "sipCallId": None}
    return {"callInfo": info, "requestInfo": None, "commented": True, "error": None}
