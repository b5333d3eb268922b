"""Request examples for the docs, taken from the vendors' documents (shared/seeds): the
Calltouch callback, lead-comment and pool-update pages and the Pozvonim call method."""

from __future__ import annotations

from typing import Any

CALLBACK_MINIMAL = {"routeKey": "routekey_1", "phone": "79992223344"}
CALLBACK_FULL = {
    "routeKey": "routekey_1",
    "phone": "79992223344",
    "fields": [
        {"name": "Имя", "value": "Иван"},
        {"name": "Фамилия", "value": "Иванов"},
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
POZVONIM_CALL = {"provider": "pozvonim", "site_id": 1001, "phone": "79992223344"}

COMMENT_LEAD = {
    "matching": [
        {"type": "request", "requestParams": {"requestId": 1, "tags": ["тег1", "тег2"]}},
        {"type": "call", "callParams": {"callId": 2, "tags": ["тег"], "tagsLogic": "and"}},
        {
            "type": "requestContact",
            "requestContactParams": {
                "emails": ["name@server.com"],
                "phones": ["79157771122", "+7 (915) 888-11-22"],
                "date": "01-10-2020 12:00:00",
                "requestTypeToMatch": "nearestUniq",
                "searchDepth": 120,
            },
        },
    ],
    "addComment": "Комментарий к лиду",
}
COMMENT_BY_CALL = {
    "matching": [{"type": "call", "callParams": {"callId": 41}}],
    "addComment": "paid",
}

POOL_UPDATE = {
    "phoneNumber": "74950000001",
    "displayOptions": {"source": "yandex", "medium": "cpc", "campaign": "spring"},
    "redirectOptions": {
        "redirectType": "PSTN",
        "ptsnOptions": {"redirectNumber": "79160000001"},
        "reserveRedirect": {"reserveNumber": "79160000002", "reserveTimeOut": 30},
    },
    "poolName": "main",
}


def _example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


JSON_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "callback": {
        "minimal": _example("The minimal callback of the Calltouch document", CALLBACK_MINIMAL),
        "full": _example("Every field, as in the Calltouch document", CALLBACK_FULL),
        "pozvonim": _example("A Pozvonim call (provider pozvonim)", POZVONIM_CALL),
        "array": _example("Several callbacks, all or none", [CALLBACK_MINIMAL, POZVONIM_CALL]),
    },
    "comment": {
        "lead": _example("One lead, matched by request, call or contact", COMMENT_LEAD),
        "array": _example(
            "Several leads (packed 100 per request)", [COMMENT_LEAD, COMMENT_BY_CALL]
        ),
    },
    "pool-update": {
        "display-and-redirect": _example("Display options and a redirect", POOL_UPDATE),
        "source-only": _example(
            "Only the source",
            {"phoneNumber": "74950000001", "displayOptions": {"source": "yandex"}},
        ),
    },
}

NDJSON_EXAMPLES: dict[str, str] = {
    "callback": "\n".join(
        [
            '{"routeKey": "routekey_1", "phone": "79992223344"}',
            '{"provider": "pozvonim", "site_id": 1001, "phone": "79992223344"}',
        ]
    ),
    "comment": "\n".join(
        [
            '{"matching": [{"type": "call", "callParams": {"callId": 41}}], "addComment": "paid"}',
            '{"matching": [{"type": "request", "requestParams": {"requestId": 42}}], '
            '"addComment": "[no-lead] test"}',
        ]
    ),
    "pool-update": '{"phoneNumber": "74950000001", "displayOptions": {"source": "yandex"}}',
}
