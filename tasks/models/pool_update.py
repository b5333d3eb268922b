"""Pool and redirect settings of a static number already in a pool:
``POST /phone-service/v1/api/calltracking/ad-platform/phone/update``."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from tasks.models.common import ApiModel, NonEmpty, Phone


class DisplayOptions(ApiModel):
    """How the number's pool appears in reports; ``source`` is required."""

    source: NonEmpty
    medium: str | None = None
    campaign: str | None = None
    content: str | None = None
    keyword: str | None = None


class PstnOptions(ApiModel):
    """Where calls are forwarded (the API spells the block ``ptsnOptions``)."""

    redirectNumber: Phone


class ReserveRedirect(ApiModel):
    """Fallback number when the main redirect does not answer."""

    reserveNumber: Phone
    reserveTimeOut: int = Field(ge=10, le=120)
    ignoreEarlyMedia: bool = True


class RedirectOptions(ApiModel):
    """Redirect scenario; only PSTN exists."""

    redirectType: Literal["PSTN"]
    ptsnOptions: PstnOptions
    reserveRedirect: ReserveRedirect | None = None


class PoolUpdateJob(ApiModel):
    """Change the pool display and/or redirect of one static number."""

    phoneNumber: Phone
    displayOptions: DisplayOptions | None = None
    redirectOptions: RedirectOptions | None = None
    poolName: NonEmpty | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.displayOptions is None and self.redirectOptions is None and self.poolName is None:
            raise PydanticCustomError(
                "nothing_to_update",
                "give at least one of displayOptions, redirectOptions, poolName",
            )
        return self
