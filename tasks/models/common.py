"""Field types shared by the job models, each with the rule the API documents for it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

_PHONE = re.compile(r"7\d{10}")
# The callback method refuses toll-free numbers: 8800/8804, written 7800/7804 in this format.
_TOLL_FREE_PREFIXES = ("7800", "7804")
DATETIME_FORMATS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")


# The longest text any field takes where the API documents no shorter limit (URLs, UTM
# tags): a field of megabytes is a mistake, and it would be stored for days.
MAX_TEXT_CHARS = 4096
# Ids are the API's 64-bit integers, and never zero or negative.
MAX_ID = 2**63 - 1
MAX_COUNT = 2**31 - 1


class ApiModel(BaseModel):
    """A request body part, checked strictly: unknown fields are refused so that typos do not
    pass silently, and values are of their field's JSON type (``true`` is no call id, ``"5"``
    no number)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=False, strict=True, str_max_length=MAX_TEXT_CHARS
    )

    def api_body(self) -> dict[str, Any]:
        """The body as the API receives it (and as a job record keeps it): JSON, no nulls."""
        return self.model_dump(mode="json", exclude_none=True)


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise PydanticCustomError(
            "phone_format",
            "must be 11 digits 7xxxxxxxxxx, e.g. 79991234567, got {value}",
            {"value": repr(value)},
        )
    return value


def _callback_phone(value: str) -> str:
    if value.startswith(_TOLL_FREE_PREFIXES):
        raise PydanticCustomError(
            "phone_toll_free", "toll-free numbers (8800, 8804) cannot be called back"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _api_datetime(value: str) -> str:
    for fmt in DATETIME_FORMATS:
        try:
            datetime.strptime(value, fmt)
        except ValueError:
            continue
        return value
    raise PydanticCustomError(
        "datetime_format",
        "must be a date and time as dd-mm-yyyy hh:mm:ss or yyyy-mm-dd hh:mm:ss, got {value}",
        {"value": repr(value)},
    )


Id = Annotated[int, Field(gt=0, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Phone = Annotated[str, AfterValidator(_phone)]
CallbackPhone = Annotated[str, AfterValidator(_phone), AfterValidator(_callback_phone)]
ApiDateTime = Annotated[str, AfterValidator(_api_datetime)]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
NotBlank = Annotated[str, AfterValidator(_not_blank)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100)]
