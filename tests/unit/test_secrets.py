"""Secrets in text: a configured secret is blanked wherever text quotes it, and a token that
cannot travel in a header is refused at start, without being shown."""

from __future__ import annotations

import logging

import pytest
import requests

from config import Settings
from tests.helpers import ctq_env, run_ctq
from worker.outcome import classify
from worker.redaction import masked_url, redact_log_records, redact_text


def configured(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_an_error_that_quotes_a_configured_token_stores_it_blanked() -> None:
    configured(CALLTOUCH_TOKEN="ct-token-9f2c", CTQ_API_KEYS="api-key-77aa, api-key-88bb")
    # requests quotes a header value it refuses; any library may quote a value it was given.
    error = requests.exceptions.InvalidHeader(
        "Invalid leading whitespace in header value: 'ct-token-9f2c\\n' (api-key-88bb)"
    )
    message = classify(error).message
    assert "ct-token-9f2c" not in message and "api-key-88bb" not in message
    assert message == "InvalidHeader: Invalid leading whitespace in header value: '***\\n' (***)"


def test_a_log_line_that_quotes_a_configured_secret_is_blanked() -> None:
    configured(POZVONIM_UID="1", POZVONIM_API_KEY="pz-key-31d0")
    redact_log_records()
    line = logging.getLogRecordFactory()(
        "worker.runner",
        logging.WARNING,
        __file__,
        1,
        "signing with %s failed",
        ("pz-key-31d0",),
        None,
    )
    assert line.getMessage() == "signing with *** failed"


def test_a_redis_password_is_blanked_in_urls_and_short_values_are_not_looked_for() -> None:
    url = "redis://ctq:r3d1s-pass@10.0.0.5:6379/0"
    configured(REDIS_URL=url, CTQ_SANDBOX_TOKEN="tok")
    assert masked_url(url) == "redis://ctq:***@10.0.0.5:6379/0"
    assert redact_text(f"cannot reach {url}") == "cannot reach redis://ctq:***@10.0.0.5:6379/0"
    assert redact_text("the tok of a clock") == "the tok of a clock"  # 3 characters: kept


def test_a_token_with_blanks_around_it_is_used_without_them() -> None:
    settings = configured(CALLTOUCH_TOKEN="  ct-token-from-a-file\n", POZVONIM_API_KEY="k-123456\n")
    assert settings.calltouch_token and settings.pozvonim_api_key
    assert settings.calltouch_token.get_secret_value() == "ct-token-from-a-file"
    assert settings.pozvonim_api_key.get_secret_value() == "k-123456"


@pytest.mark.parametrize("token", ["tok\ren-4411", "tok\u00a0en-4411"])
def test_a_token_no_header_can_carry_is_refused_at_start_without_showing_it(token: str) -> None:
    said = run_ctq(["status"], ctq_env(CALLTOUCH_TOKEN=token, REDIS_URL="redis://127.0.0.1:1/0"))
    assert said.returncode == 1
    assert "configuration: CALLTOUCH_TOKEN: has a character an HTTP header cannot carry" in (
        said.stderr
    )
    assert "en-4411" not in said.stdout + said.stderr
