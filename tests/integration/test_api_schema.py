"""Schemathesis against the API's own OpenAPI document: for every operation, generated
requests get no 5xx and every answer matches the schema (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.backend import Backend
from config import Settings

pytestmark = pytest.mark.integration

KEY = "schema-test-key"


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


# The document does not depend on Redis: the app is built once (schemathesis reads its schema
# at collection), and each test points it at the clean test Redis.
APP = create_app(Settings(_env_file=None, REDIS_URL="redis://127.0.0.1:1/0", CTQ_API_KEYS=KEY))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# The job models validate more than JSON Schema can say (phone formats, params matching a
# rule's type), and in pydantic's lax mode, as `ctq enqueue` does ("41" is a callId): a body
# valid by the schema may be refused, and one invalid by it accepted. Every other check runs.
LAX = [
    schemathesis.specs.openapi.checks.positive_data_acceptance,
    schemathesis.specs.openapi.checks.negative_data_rejection,
]


@pytest.fixture(autouse=True)
def on_test_redis(redis_url: str) -> Iterator[None]:
    settings_ = Settings(_env_file=None, REDIS_URL=redis_url, CTQ_API_KEYS=KEY)
    APP.state.settings = settings_
    APP.state.backend = Backend(settings_)
    yield
    APP.state.backend.close()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, excluded_checks=LAX)
