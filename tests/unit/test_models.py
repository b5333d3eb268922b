"""Every documented rule of the three API methods is enforced, with the field it is about."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.models import CallbackJob, CommentJob, CommentLead, PoolUpdateJob, PozvonimCallJob
from tasks.validation import JobValidationError, validate

# The documents' own examples.
FULL_CALLBACK = {
    "routeKey": "routekey_1",
    "phone": "79992223344",
    "fields": [
        {"name": "Имя", "value": "Иван"},
        {"name": "Фамилия", "value": "Иванов"},
        {"name": "Отчество", "value": "Иванович"},
        {"name": "Город", "value": "Москва"},
        {"name": "Тема", "value": "Заявка на консультацию"},
    ],
    "sessionId": "11223344",
    "scheduleTime": "2021-02-01 17:10:00",
    "utmMedium": "medium",
    "utmSource": "source",
    "utmCampaign": "campaign",
    "utmContent": "content",
    "utmTerm": "term",
    "tags": ["tag1", "tag2", "tag3", "tag10"],
    "unitId": 112233,
}
DOC_LEAD = {
    "matching": [
        {
            "type": "request",
            "requestParams": {"requestId": 1, "tags": ["тег1", "тег2"], "tagsLogic": "and"},
        },
        {"type": "call", "callParams": {"callId": 2, "tags": ["тег"], "tagsLogic": "and"}},
        {
            "type": "requestContact",
            "requestContactParams": {
                "emails": ["name@server.com"],
                "phones": ["79157771122", "+7 (915) 888-11-22"],
                "date": "01-10-2020 12:00:00",
                "tags": ["тег"],
                "tagsLogic": "and",
                "requestTypeToMatch": "nearestUniq",
                "searchDepth": 120,
            },
        },
        {
            "type": "callContact",
            "callContactParams": {
                "phones": ["84953338877"],
                "date": "01-10-2020 12:00:00",
                "tags": ["тег"],
                "tagsLogic": "and",
                "callTypeToMatch": "nearestUniqLead",
                "searchDepth": 120,
            },
        },
    ],
    "addComment": "Комментарий к лиду",
}
FULL_POOL_UPDATE = {
    "phoneNumber": "74950000001",
    "displayOptions": {
        "source": "s",
        "medium": "m",
        "campaign": "c",
        "content": "ct",
        "keyword": "k",
    },
    "redirectOptions": {
        "redirectType": "PSTN",
        "ptsnOptions": {"redirectNumber": "79990000002"},
        "reserveRedirect": {"reserveNumber": "79990000003", "reserveTimeOut": 30},
    },
    "poolName": "main",
}


def problems(model: type, data: Any) -> dict[str, str]:
    with pytest.raises(JobValidationError) as caught:
        validate(model, data)
    return {p.path: p.reason for p in caught.value.problems}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_documented_examples_are_accepted_unchanged() -> None:
    assert validate(CallbackJob, FULL_CALLBACK).model_dump(exclude_none=True) == FULL_CALLBACK
    assert validate(CallbackJob, {"routeKey": "routekey_1", "phone": "79992223344"})
    lead = validate(CommentLead, DOC_LEAD)
    assert lead.model_dump(exclude_none=True) == DOC_LEAD
    assert validate(PoolUpdateJob, FULL_POOL_UPDATE)


@pytest.mark.parametrize(
    "phone", ["89991234567", "7999123456", "799912345678", "+79991234567", "7999123456a"]
)
def test_callback_phone_must_be_7_and_ten_digits(phone: str) -> None:
    assert "7xxxxxxxxxx" in problems(CallbackJob, {"routeKey": "k", "phone": phone})["phone"]


@pytest.mark.parametrize("phone", ["78001234567", "78041234567"])
def test_callback_refuses_toll_free_numbers(phone: str) -> None:
    assert "toll-free" in problems(CallbackJob, {"routeKey": "k", "phone": phone})["phone"]


def test_route_key_is_1_to_255_characters() -> None:
    assert "routeKey" in problems(CallbackJob, {"routeKey": "", "phone": "79991234567"})
    assert "routeKey" in problems(CallbackJob, {"routeKey": "k" * 256, "phone": "79991234567"})
    assert validate(CallbackJob, {"routeKey": "k" * 255, "phone": "79991234567"})


def test_at_most_five_fields_with_name_and_value_of_1_to_255() -> None:
    field = {"name": "n", "value": "v"}
    assert "at most 5" in problems(CallbackJob, with_(FULL_CALLBACK, fields=[field] * 6))["fields"]
    found = problems(CallbackJob, with_(FULL_CALLBACK, fields=[{"name": "", "value": "v" * 256}]))
    assert set(found) == {"fields[0].name", "fields[0].value"}
    assert "fields[0].value" in problems(CallbackJob, with_(FULL_CALLBACK, fields=[{"name": "n"}]))


def test_at_most_ten_tags_of_at_most_100_characters() -> None:
    assert "tags" in problems(CallbackJob, with_(FULL_CALLBACK, tags=["t"] * 11))
    assert "tags[1]" in problems(CallbackJob, with_(FULL_CALLBACK, tags=["ok", "t" * 101]))


@pytest.mark.parametrize("when", ["2021-02-01 17:10:00", "01-02-2021 17:10:00"])
def test_schedule_time_takes_both_documented_formats(when: str) -> None:
    assert validate(CallbackJob, with_(FULL_CALLBACK, scheduleTime=when))


@pytest.mark.parametrize("when", ["2021-02-01T17:10:00", "2021-13-01 17:10:00", "tomorrow"])
def test_schedule_time_refuses_other_formats(when: str) -> None:
    assert (
        "dd-mm-yyyy"
        in problems(CallbackJob, with_(FULL_CALLBACK, scheduleTime=when))["scheduleTime"]
    )


def test_session_id_is_at_most_100_characters() -> None:
    assert "sessionId" in problems(CallbackJob, with_(FULL_CALLBACK, sessionId="1" * 101))


def test_unknown_fields_are_refused_by_name() -> None:
    assert problems(CallbackJob, with_(FULL_CALLBACK, phoneNumber="7"))["phoneNumber"] == (
        "Extra inputs are not permitted"
    )


def test_comment_request_holds_1_to_100_leads() -> None:
    assert "comments" in problems(CommentJob, {"comments": []})
    assert "comments" in problems(CommentJob, {"comments": [DOC_LEAD] * 101})
    assert validate(CommentJob, {"comments": [DOC_LEAD] * 100})


def test_each_lead_has_1_to_20_matching_rows() -> None:
    row = DOC_LEAD["matching"][0]
    assert "matching" in problems(CommentLead, with_(DOC_LEAD, matching=[]))
    assert "matching" in problems(CommentLead, with_(DOC_LEAD, matching=[row] * 21))
    assert validate(CommentLead, with_(DOC_LEAD, matching=[row] * 20))


def test_params_block_must_match_the_row_type() -> None:
    row = {"type": "request", "callParams": {"callId": 2}}
    reason = problems(CommentLead, with_(DOC_LEAD, matching=[row]))["matching[0]"]
    assert "requestParams" in reason and "callParams" in reason
    both = {"type": "call", "callParams": {"callId": 2}, "requestParams": {"requestId": 1}}
    assert "matching[0]" in problems(CommentLead, with_(DOC_LEAD, matching=[both]))
    bad_type = problems(CommentLead, with_(DOC_LEAD, matching=[{"type": "email"}]))
    assert "matching[0].type" in bad_type


def test_params_blocks_are_checked_inside() -> None:
    rows = [
        {"type": "request", "requestParams": {"tags": ["x"]}},
        {"type": "call", "callParams": {"callId": 1, "tagsLogic": "xor"}},
        {"type": "requestContact", "requestContactParams": {"date": "01-10-2020"}},
        {"type": "callContact", "callContactParams": {"phones": []}},
        {"type": "requestContact", "requestContactParams": {"tags": ["x"]}},
    ]
    found = problems(CommentLead, with_(DOC_LEAD, matching=rows))
    assert "matching[0].requestParams.requestId" in found
    assert "matching[1].callParams.tagsLogic" in found
    assert "matching[2].requestContactParams.date" in found
    assert "matching[3].callContactParams" in found
    assert "emails, phones" in found["matching[4].requestContactParams"]


def test_add_comment_is_1_to_1000_characters_and_not_blank() -> None:
    assert "addComment" in problems(CommentLead, with_(DOC_LEAD, addComment=""))
    assert "addComment" in problems(CommentLead, with_(DOC_LEAD, addComment="   "))
    assert "addComment" in problems(CommentLead, with_(DOC_LEAD, addComment="x" * 1001))
    assert validate(CommentLead, with_(DOC_LEAD, addComment="x" * 1000))
    assert "addComment" in problems(CommentLead, {"matching": DOC_LEAD["matching"]})


def test_pool_update_needs_something_to_change() -> None:
    reason = problems(PoolUpdateJob, {"phoneNumber": "74950000001"})["(body)"]
    assert "displayOptions" in reason and "poolName" in reason
    assert validate(PoolUpdateJob, {"phoneNumber": "74950000001", "poolName": "p"})


def test_pool_update_number_is_one_phone_in_7_format() -> None:
    assert "phoneNumber" in problems(
        PoolUpdateJob, with_(FULL_POOL_UPDATE, phoneNumber="84950000001")
    )
    assert "phoneNumber" in problems(
        PoolUpdateJob, with_(FULL_POOL_UPDATE, phoneNumber=["74950000001"])
    )


def test_display_options_need_source() -> None:
    found = problems(PoolUpdateJob, with_(FULL_POOL_UPDATE, displayOptions={"medium": "m"}))
    assert found == {"displayOptions.source": "Field required"}


def test_redirect_rules() -> None:
    def redirect(**options: Any) -> dict[str, str]:
        return problems(PoolUpdateJob, with_(FULL_POOL_UPDATE, redirectOptions=options))

    pstn = {"redirectNumber": "79990000002"}
    assert "redirectOptions.redirectType" in redirect(redirectType="SIP", ptsnOptions=pstn)
    assert "redirectOptions.ptsnOptions" in redirect(redirectType="PSTN")
    assert "redirectOptions.ptsnOptions.redirectNumber" in redirect(
        redirectType="PSTN", ptsnOptions={}
    )
    reserve = redirect(redirectType="PSTN", ptsnOptions=pstn, reserveRedirect={"reserveTimeOut": 9})
    assert set(reserve) == {
        "redirectOptions.reserveRedirect.reserveNumber",
        "redirectOptions.reserveRedirect.reserveTimeOut",
    }
    too_long = {"reserveNumber": "79990000003", "reserveTimeOut": 121}
    assert "redirectOptions.reserveRedirect.reserveTimeOut" in redirect(
        redirectType="PSTN", ptsnOptions=pstn, reserveRedirect=too_long
    )


def test_ignore_early_media_defaults_to_true_in_the_request() -> None:
    body = validate(PoolUpdateJob, FULL_POOL_UPDATE).model_dump(mode="json", exclude_none=True)
    assert body["redirectOptions"]["reserveRedirect"]["ignoreEarlyMedia"] is True


POZVONIM = {"provider": "pozvonim", "site_id": 42, "phone": "+79991234567"}


def test_pozvonim_call_rules() -> None:
    full = {
        **POZVONIM,
        "delayed": "2026-11-23T10:00:00+03:00",
        "region": 3,
        "source_call": "https://a.ru/contacts",
        "source_enter": "https://a.ru/",
        "source_referer": "https://ya.ru/",
        "return_count": 4,
        "ip": "10.0.0.1",
        "useragent": "Mozilla/5.0",
    }
    assert validate(PozvonimCallJob, full).model_dump(exclude_none=True) == full
    found = problems(
        PozvonimCallJob,
        {
            **POZVONIM,
            "site_id": 0,
            "phone": "12",
            "delayed": "tomorrow",
            "ip": "300.1.1.1",
            "return_count": -1,
            "routeKey": "x",
        },
    )
    assert set(found) == {"site_id", "phone", "delayed", "ip", "return_count", "routeKey"}
    assert "ISO 8601" in found["delayed"]
    assert "provider" in problems(PozvonimCallJob, {**POZVONIM, "provider": "other"})
