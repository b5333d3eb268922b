"""Autodial campaigns: load from an uploaded CSV/JSONL, list, status, pause, resume, cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool

from api import backend
from api.accounts import AccountName, account_of
from api.responses import INVALID, NOT_FOUND, TOO_LARGE, UNAVAILABLE, Responses
from api.schemas import CampaignLoaded, CampaignState, Detail, Problem
from config import Settings
from scheduler import campaigns
from scheduler.campaigns import Campaign, CampaignError
from scheduler.windows import CallWindow
from tasks.campaign_rows import Rows, rows_of_text
from tasks.producer import Producer
from tasks.validation import JobValidationError
from tasks.validation import Problem as InputProblem
from worker.errors import InvalidInput

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

Client = Annotated[redis.Redis, Depends(backend.client)]
CONFLICT: Responses = {
    409: {"model": Detail, "description": "a campaign of this name runs, or it has ended"}
}
# The form fields of a load, by name.
LoadForm = dict[str, Any]
STATES = {
    "pause": campaigns.Lifecycle.PAUSED,
    "resume": campaigns.Lifecycle.ACTIVE,
    "cancel": campaigns.Lifecycle.CANCELLED,
}


@router.get("", responses=UNAVAILABLE, summary="Every campaign")
def list_campaigns(client: Client) -> list[dict[str, Any]]:
    now = campaigns.utcnow()
    return [campaigns.status(client, name, now) for name in campaigns.names(client)]


@router.get("/{name}", responses={**NOT_FOUND, **UNAVAILABLE}, summary="One campaign")
def campaign_status(name: str, client: Client) -> dict[str, Any]:
    """Loaded, released, done, failed, left, ETA (`ctq campaign status NAME --json`)."""
    return campaigns.status(client, name, campaigns.utcnow())


@router.post(
    "/{name}/{action}",
    responses={**NOT_FOUND, **CONFLICT, **UNAVAILABLE},
    summary="Pause, resume or cancel a campaign",
)
def steer_campaign(
    name: str, action: Literal["pause", "resume", "cancel"], client: Client
) -> CampaignState:
    """Cancel stops for good: rows not released are dropped."""
    try:
        campaigns.set_state(client, name, STATES[action])
    except CampaignError as exc:  # finished or cancelled: it cannot be steered any more
        raise HTTPException(409, str(exc)) from None
    return CampaignState(name=name, state=STATES[action])


def _refusal(rows: Rows) -> list[Problem]:
    return [
        Problem(line=p.line, field=p.path, reason=p.reason)
        for _, _, problems in rows.refused
        for p in problems
    ]


def _invalid(field: str, reason: str) -> JobValidationError:
    return JobValidationError([InputProblem(0, field, reason)])


def load(
    producer: Producer, settings: Settings, name: str, text: str, is_csv: bool, form: LoadForm
) -> CampaignLoaded:
    """As `ctq campaign load`: every row validated; nothing loads if one is bad, unless
    ``skip_invalid`` (then the refused rows are answered, not loaded)."""
    timezone = form["timezone"] or settings.timezone
    try:
        CallWindow.parse(form["window"], form["days"], timezone)
    except ValueError as exc:
        raise _invalid("window", str(exc)) from None
    try:
        rows = rows_of_text(text, is_csv, form["route_key"])
    except InvalidInput as exc:  # not CSV, a duplicate header, no rows
        raise _invalid("file", str(exc)) from None
    if rows.refused and not form["skip_invalid"]:
        raise JobValidationError([InputProblem(p.line, p.field, p.reason) for p in _refusal(rows)])
    campaign = Campaign(
        name,
        form["route_key"],
        form["window"],
        form["days"],
        timezone,
        form["per_minute"],
        campaigns.Lifecycle.ACTIVE,
        form["account"],
    )
    try:
        loaded = campaigns.load(producer, campaign, rows.valid)
    except CampaignError as exc:
        raise HTTPException(409, str(exc)) from None
    return CampaignLoaded(name=name, loaded=loaded, refused=_refusal(rows))


@router.post(
    "/{name}",
    status_code=201,
    responses={**INVALID, **CONFLICT, **TOO_LARGE, **UNAVAILABLE},
    summary="Load a campaign from a CSV or JSONL file",
)
async def load_campaign(
    name: str,
    file: Annotated[UploadFile, Form(description=".csv (header: callback fields) or .jsonl")],
    route_key: Annotated[str, Form(min_length=1, description="the auto-dial widget's routeKey")],
    producer: Annotated[Producer, Depends(backend.producer)],
    settings: Annotated[Settings, Depends(backend.settings)],
    window: Annotated[str, Form(description="call window, HH:MM-HH:MM")] = "09:00-20:00",
    days: Annotated[str, Form(description="e.g. mon-fri, sat,sun or daily")] = "mon-fri",
    timezone: Annotated[str | None, Form(description="default CTQ_TIMEZONE")] = None,
    per_minute: Annotated[int, Form(ge=1, description="callbacks released a minute")] = 10,
    skip_invalid: Annotated[bool, Form(description="load the valid rows only")] = False,
    account: AccountName = None,
) -> CampaignLoaded:
    """Validate every row as a callback (`routeKey` from `route_key` unless a row gives its
    own). Callbacks are released only inside the call window, at `per_minute`, and no faster
    per phone than CTQ_CAMPAIGN_PHONE_INTERVAL seconds."""
    raw = await file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _invalid("file", f"not valid UTF-8 at byte {exc.start + 1}") from None
    is_csv = (file.filename or "").lower().endswith(".csv") or file.content_type == "text/csv"
    form: LoadForm = {
        "route_key": route_key,
        "window": window,
        "days": days,
        "timezone": timezone,
        "per_minute": per_minute,
        "skip_invalid": skip_invalid,
        "account": account_of(account, settings),
    }
    return await run_in_threadpool(load, producer, settings, name, text, is_csv, form)
