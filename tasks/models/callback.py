"""Callback request: ``POST /widget-service/v1/api/widget-request/user-form/create``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from tasks.models.common import ApiDateTime, ApiModel, CallbackPhone, Id, Tag, Text255


class CustomField(ApiModel):
    """One of up to five free fields shown on the call card."""

    name: Text255
    value: Text255


class CallbackJob(ApiModel):
    """Ask the auto-dial widget to call a customer back."""

    routeKey: Text255
    phone: CallbackPhone
    fields: list[CustomField] | None = Field(None, max_length=5)
    sessionId: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    scheduleTime: ApiDateTime | None = None
    utmSource: str | None = None
    utmMedium: str | None = None
    utmCampaign: str | None = None
    utmContent: str | None = None
    utmTerm: str | None = None
    callUrl: str | None = None
    tags: list[Tag] | None = Field(None, max_length=10)
    unitId: Id | None = None
