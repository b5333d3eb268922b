"""What the API answers, as pydantic models (they document the answers in OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Detail(BaseModel):
    """Why a request was not served."""

    detail: str


class Problem(BaseModel):
    """One reason an input was refused, as ``ctq enqueue`` prints it: ``line N: field: reason``.
    Line 0 is the request itself (a parameter or header)."""

    line: int = Field(ge=0)
    field: str
    reason: str


class Refused(BaseModel):
    """The input was refused; nothing from it was enqueued. ``more`` problems were only
    counted (the first 1000 are listed)."""

    problems: list[Problem]
    more: int = 0


class Enqueued(BaseModel):
    """One id per job, in input order (for comments: one per 100 leads). ``reused`` of them
    were enqueued before under the same idempotency key and were not enqueued again."""

    job_ids: list[str]
    reused: int = 0


class Staged(BaseModel):
    """Leads staged for the nightly run (all of them, this input's included)."""

    staged: int
    nightly_at: str


class Selection(BaseModel):
    """Which dead letters: by id, all of them, or those with an API code / HTTP status."""

    ids: list[str] = Field(default_factory=list)
    all: bool = False
    code: int | None = None


class Replayed(BaseModel):
    """The new job id per replayed dead letter, why others were refused, and those gone
    (purged while the replay ran: nothing enqueued for them)."""

    enqueued: dict[str, str]
    refused: dict[str, list[Problem]]
    gone: list[str] = []


class Purged(BaseModel):
    purged: int


class Resumed(BaseModel):
    """The lanes that were paused and are not any more, with how many jobs they released."""

    resumed: list[dict[str, Any]]


class CampaignState(BaseModel):
    name: str
    state: str


class CampaignLoaded(BaseModel):
    """A loaded campaign; with ``skip_invalid``, the rows refused (not loaded)."""

    name: str
    loaded: int
    refused: list[Problem] = Field(default_factory=list)


class Health(BaseModel):
    status: str
