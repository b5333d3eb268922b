"""The Pozvonim client against the sandbox: token, signing, renewal, errors."""

from __future__ import annotations

import pytest
import redis
import requests
from pydantic import SecretStr

from config.policy import Outcome
from tasks.pozvonim_call import route
from tests.conftest import RunningSandbox
from worker.outcome import classify
from worker.pozvonim import PozvonimClient
from worker.runtime import POZVONIM_SUCCESS


def client(
    sandbox: RunningSandbox, real_redis: redis.Redis, key: str = "sandbox-key"
) -> PozvonimClient:
    return PozvonimClient(
        f"{sandbox.url}/v2u",
        "1001",
        SecretStr(key),
        real_redis,
        "test-ip",
        connect_timeout=2,
        read_timeout=5,
    )


def stats(sandbox: RunningSandbox) -> dict[str, int]:
    return dict(requests.get(f"{sandbox.url}/_sandbox/pozvonim/stats", timeout=5).json())


def call(pozvonim: PozvonimClient, payload: dict) -> requests.Response:
    answer = pozvonim.post(*route(payload))
    assert isinstance(answer, requests.Response)
    return answer


PAYLOAD = {"provider": "pozvonim", "site_id": 42, "phone": "+79991234567", "return_count": 3}


def test_a_call_is_signed_with_a_token_fetched_once_and_shared(
    sandbox: RunningSandbox, real_redis: redis.Redis
) -> None:
    first, second = client(sandbox, real_redis), client(sandbox, real_redis)
    assert call(first, PAYLOAD).status_code == 200
    assert call(second, {**PAYLOAD, "delayed": "2026-11-23T10:00:00+03:00"}).status_code == 200
    assert stats(sandbox) == {"token_requests": 1, "calls": 2}
    paths = [r["path"] for r in sandbox.received()]
    assert paths == ["/v2u/auth/token", "/v2u/sites/42/call", "/v2u/sites/42/call/delayed"]
    assert sandbox.received()[1]["body"] == {
        "phone": "+79991234567",
        "return_count": "3",
        "uid": "1001",
        "sign": "***",
    }
    assert real_redis.ttl("ctq:pozvonim:token:1001:test-ip") > 3 * 3600


def test_an_expired_token_is_renewed_once(sandbox: RunningSandbox, real_redis: redis.Redis) -> None:
    pozvonim = client(sandbox, real_redis)
    call(pozvonim, PAYLOAD)
    requests.post(f"{sandbox.url}/_sandbox/pozvonim/expire", timeout=5)
    verdict = classify(call(pozvonim, PAYLOAD), success_statuses=POZVONIM_SUCCESS)
    assert verdict.key == "http_401" and "AUTH-INVALID-TOKEN" in verdict.message
    assert pozvonim.after(verdict) is True  # forget the token: send again with a new one
    assert call(pozvonim, PAYLOAD).status_code == 200
    assert stats(sandbox)["token_requests"] == 2


def test_a_wrong_key_is_an_account_level_answer_not_retried_with_a_new_token(
    sandbox: RunningSandbox, real_redis: redis.Redis
) -> None:
    pozvonim = client(sandbox, real_redis, key="wrong")
    verdict = classify(call(pozvonim, PAYLOAD), success_statuses=POZVONIM_SUCCESS)
    assert (verdict.key, verdict.outcome) == ("http_403", Outcome.PAUSE)
    assert verdict.message == "AUTH-WRONG-SIGN: Wrong uid or sign"
    assert pozvonim.after(verdict) is False


def test_only_200_201_202_204_are_success() -> None:
    answer = requests.Response()
    answer.status_code = 203
    answer._content = b""
    assert classify(answer, success_statuses=POZVONIM_SUCCESS).outcome is Outcome.DEAD
    answer.status_code = 204
    assert classify(answer, success_statuses=POZVONIM_SUCCESS).outcome is Outcome.DONE


def test_a_token_answer_without_a_token_pauses_and_is_not_a_sent_call(
    fake_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pozvonim = PozvonimClient(
        "http://127.0.0.1:9/v2u",
        "1001",
        SecretStr("sandbox-key"),
        fake_redis,
        "test-ip",
        connect_timeout=2,
        read_timeout=5,
    )
    answer = requests.Response()
    answer.status_code, answer._content = 200, b'{"expire": 1800000000}'
    monkeypatch.setattr(pozvonim.session, "get", lambda *args, **kwargs: answer)
    verdict = classify(pozvonim.post(*route(PAYLOAD)), success_statuses=POZVONIM_SUCCESS)
    assert (verdict.key, verdict.outcome) == ("token_missing", Outcome.PAUSE)
    assert verdict.message == "the token request was answered HTTP 200 without a token"
    assert fake_redis.get(pozvonim.token_key) is None
