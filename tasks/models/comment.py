"""Lead comments: ``POST /lead-service/v1/api/comment/lead/add``."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from tasks.models.common import ApiDateTime, ApiModel, Count, Id, NonEmpty, NotBlank, Tag

MAX_LEADS_PER_REQUEST = 100
TagsLogic = Literal["and", "or"]


class RequestParams(ApiModel):
    requestId: Id
    tags: list[Tag] | None = None
    tagsLogic: TagsLogic | None = None


class CallParams(ApiModel):
    callId: Id
    tags: list[Tag] | None = None
    tagsLogic: TagsLogic | None = None


class _ContactParams(ApiModel):
    phones: list[NonEmpty] | None = None
    date: ApiDateTime | None = None
    tags: list[Tag] | None = None
    tagsLogic: TagsLogic | None = None
    searchDepth: Count | None = None


class RequestContactParams(_ContactParams):
    emails: list[NonEmpty] | None = None
    requestTypeToMatch: NonEmpty | None = None

    @model_validator(mode="after")
    def _has_contact(self) -> Self:
        if not self.emails and not self.phones:
            raise PydanticCustomError("no_contact", "give at least one of emails, phones")
        return self


class CallContactParams(_ContactParams):
    callTypeToMatch: NonEmpty | None = None

    @model_validator(mode="after")
    def _has_contact(self) -> Self:
        if not self.phones:
            raise PydanticCustomError("no_contact", "phones is required and must not be empty")
        return self


PARAMS_FIELD = {
    "request": "requestParams",
    "call": "callParams",
    "requestContact": "requestContactParams",
    "callContact": "callContactParams",
}


class MatchRow(ApiModel):
    """One matching rule; the params block must be the one its ``type`` names."""

    type: Literal["request", "call", "requestContact", "callContact"]
    requestParams: RequestParams | None = None
    callParams: CallParams | None = None
    requestContactParams: RequestContactParams | None = None
    callContactParams: CallContactParams | None = None

    @model_validator(mode="after")
    def _params_match_type(self) -> Self:
        wanted = PARAMS_FIELD[self.type]
        given = [name for name in PARAMS_FIELD.values() if getattr(self, name) is not None]
        if given != [wanted]:
            raise PydanticCustomError(
                "params_mismatch",
                "type {type} needs exactly one params block, {wanted}; got {given}",
                {"type": repr(self.type), "wanted": wanted, "given": ", ".join(given) or "none"},
            )
        return self


class CommentLead(ApiModel):
    """One lead to comment: how to find it (highest priority first) and the comment."""

    matching: list[MatchRow] = Field(min_length=1, max_length=20)
    addComment: NotBlank = Field(min_length=1, max_length=1000)


class CommentJob(ApiModel):
    """One request: up to 100 leads."""

    comments: list[CommentLead] = Field(min_length=1, max_length=MAX_LEADS_PER_REQUEST)
