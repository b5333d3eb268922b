"""`ctq serve` as a real process: jobs posted over HTTP reach the sandbox through a real
worker; refusals, keys, Redis outages and idempotency as a client sees them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.api_process import ApiProcess
from tests.conftest import RunningSandbox, WorkerProcess, env_for
from tests.helpers import RedisServer, free_port, run_ctq, wait_for
from worker import jobstore

pytestmark = pytest.mark.integration

API_KEY = "api-test-key-5d1e"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}
CALLBACK = {"routeKey": "rk-http", "phone": "79991230001"}
LEAD = '{"matching": [{"type": "call", "callParams": {"callId": %d}}], "addComment": "paid"}'
POOL_UPDATE = {"phoneNumber": "74950000001", "displayOptions": {"source": "yandex"}}


@pytest.fixture
def api_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {**worker_env, "CTQ_API_KEYS": f"other-key, {API_KEY}"}


def post(api: ApiProcess, kind: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.post(f"{api.url}/v1/jobs/{kind}", headers=headers, timeout=30, **kwargs)


def nothing_enqueued(client: redis.Redis) -> bool:
    counts = jobstore.counts(client)
    return sum(counts.values()) == 0 and client.llen("realtime") + client.llen("bulk") == 0


def test_jobs_posted_over_http_are_delivered(
    api_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_api: Callable[..., ApiProcess],
) -> None:
    start_worker(api_env)
    api = start_api(api_env)
    callback = post(api, "callback", AUTH, json=CALLBACK)
    leads = "\n".join(LEAD % n for n in range(1, 151))
    comments = post(api, "comment", NDJSON, data=leads.encode())
    pool = post(api, "pool-update", AUTH, json=[POOL_UPDATE])
    assert (callback.status_code, comments.status_code, pool.status_code) == (202, 202, 202)
    assert len(comments.json()["job_ids"]) == 2  # 150 leads: 100 + 50 per request
    ids = callback.json()["job_ids"] + comments.json()["job_ids"] + pool.json()["job_ids"]

    def states() -> list[str]:
        return [
            requests.get(f"{api.url}/v1/jobs/{i}", headers=AUTH, timeout=10).json()["state"]
            for i in ids
        ]

    wait_for(lambda: states() == ["done"] * 4, timeout=60)
    received = sandbox.accepted()
    assert [r["body"]["phone"] for r in received if "phone" in r["body"]] == [CALLBACK["phone"]]
    sent_leads = [c for r in received if "comments" in r["body"] for c in r["body"]["comments"]]
    assert sorted(c["matching"][0]["callParams"]["callId"] for c in sent_leads) == list(
        range(1, 151)
    )
    assert any(r["body"].get("phoneNumber") == POOL_UPDATE["phoneNumber"] for r in received)
    status = requests.get(f"{api.url}/v1/status", headers=AUTH, timeout=10).json()
    assert status["jobs"]["done"] == 4


def test_a_refused_batch_enqueues_nothing(
    api_env: dict[str, str], real_redis: redis.Redis, start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api(api_env)
    bad_last = [CALLBACK, {**CALLBACK, "phone": "79991230002"}, {"routeKey": "rk", "phone": "8"}]
    answer = post(api, "callback", AUTH, json=bad_last)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        {
            "line": 3,
            "field": "phone",
            "reason": "must be 11 digits 7xxxxxxxxxx, e.g. 79991234567, got '8'",
        }
    ]
    not_json = post(api, "comment", NDJSON, data=(LEAD % 1 + "\n{oops\n").encode())
    assert not_json.status_code == 422
    assert not_json.json()["problems"][0]["line"] == 2
    not_a_time = post(api, "callback", AUTH, json=CALLBACK, params={"at": "tomorrow"})
    assert (not_a_time.status_code, not_a_time.json()["problems"]) == (
        422,
        [
            {
                "line": 0,
                "field": "query.at",
                "reason": "not an ISO 8601 time like 2026-11-23T10:00:00+03:00: 'tomorrow'",
            }
        ],
    )
    no_such_kind = post(api, "callbacks", AUTH, json=CALLBACK)
    assert (no_such_kind.status_code, no_such_kind.json()) == (
        404,
        {"detail": "no job kind 'callbacks'; kinds: comment, callback, pool-update"},
    )
    assert nothing_enqueued(real_redis)


def test_requests_without_a_known_key_get_401(
    api_env: dict[str, str], real_redis: redis.Redis, start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api(api_env)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        answer = post(api, "callback", headers, json=CALLBACK)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(f"{api.url}/v1/status", timeout=10).status_code == 401
    assert requests.get(f"{api.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert nothing_enqueued(real_redis)


def test_redis_down_answers_503_and_enqueues_nothing(
    sandbox: RunningSandbox, tmp_path: Path, start_api: Callable[..., ApiProcess]
) -> None:
    server = RedisServer(free_port(), tmp_path / "redis")
    server.directory.mkdir()
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    server.start(*durable)
    try:
        env = {**env_for(server.url, sandbox, tmp_path / "data"), "CTQ_API_KEYS": API_KEY}
        api = start_api(env)
        assert post(api, "callback", AUTH, json=CALLBACK).status_code == 202
        server.stop()
        down = post(api, "callback", AUTH, json={**CALLBACK, "phone": "79991230003"})
        assert down.status_code == 503
        assert "Redis" in down.json()["detail"]
        assert requests.get(f"{api.url}/readyz", headers=AUTH, timeout=30).status_code == 503
        server.start(*durable)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert jobstore.counts(client)["queued"] == 1  # the first callback only
        assert requests.get(f"{api.url}/readyz", headers=AUTH, timeout=30).status_code == 200
        again = post(api, "callback", AUTH, json={**CALLBACK, "phone": "79991230004"})
        assert again.status_code == 202
        assert jobstore.counts(client)["queued"] == 2
        client.close()
    finally:
        server.stop()


def test_an_idempotent_post_answers_the_first_ids(
    api_env: dict[str, str], real_redis: redis.Redis, start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api(api_env)
    keyed = {**AUTH, "Idempotency-Key": "order-17"}
    first = post(api, "pool-update", keyed, json=[POOL_UPDATE, {**POOL_UPDATE, "poolName": "b"}])
    again = post(api, "pool-update", keyed, json=[POOL_UPDATE, {**POOL_UPDATE, "poolName": "b"}])
    assert first.status_code == again.status_code == 202
    assert again.json() == {"job_ids": first.json()["job_ids"], "reused": 2}
    other = post(api, "pool-update", keyed, json=[POOL_UPDATE, {**POOL_UPDATE, "poolName": "c"}])
    assert other.status_code == 422
    [problem] = other.json()["problems"]
    assert (problem["line"], problem["field"]) == (2, "(idempotency key)")
    assert "'order-17:2' was used within CTQ_IDEMPOTENCY_WINDOW" in problem["reason"]
    assert jobstore.counts(real_redis)["queued"] == 2


def test_a_body_over_the_limit_gets_413(
    api_env: dict[str, str], real_redis: redis.Redis, start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api({**api_env, "CTQ_API_MAX_BODY_BYTES": "2048"})
    leads = "\n".join(LEAD % n for n in range(1, 100)).encode()
    assert post(api, "comment", NDJSON, data=leads).status_code == 413

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield from (leads[i : i + 500] for i in range(0, len(leads), 500))

    assert post(api, "comment", NDJSON, data=chunked()).status_code == 413
    assert nothing_enqueued(real_redis)


def test_serve_refuses_to_start_without_keys(worker_env: dict[str, str]) -> None:
    refused = run_ctq(["serve"], worker_env, timeout=30)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "ctq: no API keys: set CTQ_API_KEYS=KEY[,KEY...] (or serve on 127.0.0.1 with "
        "--insecure-no-auth)"
    ]
    exposed = run_ctq(["serve", "--insecure-no-auth", "--host", "0.0.0.0"], worker_env)
    assert exposed.returncode == 2
    assert "loopback" in exposed.stderr


def test_insecure_no_auth_serves_on_loopback_without_keys(
    worker_env: dict[str, str], start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api(worker_env, "--insecure-no-auth")
    assert post(api, "callback", {}, json=CALLBACK).status_code == 202


def test_jobs_posted_for_an_account_go_on_its_queue_and_unknown_accounts_get_422(
    api_env: dict[str, str],
    real_redis: redis.Redis,
    start_api: Callable[..., ApiProcess],
    tmp_path: Path,
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.shop-a]\nsite_id = "1001"\ntoken = "shop-a-token"\n')
    api = start_api({**api_env, "CTQ_ACCOUNTS_FILE": str(accounts)})
    unknown = post(api, "callback", AUTH, json=CALLBACK, params={"account": "shop-z"})
    assert unknown.status_code == 422
    [problem] = unknown.json()["problems"]
    assert (problem["line"], problem["field"]) == (0, "query.account")
    assert "unknown account 'shop-z'; known: default, shop-a" in problem["reason"]
    assert nothing_enqueued(real_redis)

    answer = post(api, "comment", NDJSON, data=(LEAD % 7).encode(), params={"account": "shop-a"})
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["job_ids"]
    assert real_redis.hget(f"ctq:job:{job_id}", "account") == "shop-a"
    assert (real_redis.llen("bulk"), real_redis.llen("bulk.shop-a")) == (0, 1)
    shown = requests.get(f"{api.url}/v1/status", headers=AUTH, timeout=10).json()
    assert shown["accounts"]["shop-a"]["queues"] == {"realtime": 0, "bulk": 1}


def test_serve_with_two_workers_enqueues_and_checks_keys_in_each_process(
    api_env: dict[str, str], real_redis: redis.Redis, start_api: Callable[..., ApiProcess]
) -> None:
    api = start_api(api_env, "--workers", "2")
    # Each request on a connection of its own, so both processes answer some of them.
    for _ in range(8):
        assert requests.get(f"{api.url}/readyz", headers=AUTH, timeout=30).status_code == 200
        refused = post(api, "callback", {}, json=CALLBACK)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(f"{api.url}/readyz", timeout=30).status_code == 401
    answers = [
        post(api, "callback", AUTH, json={**CALLBACK, "phone": f"7999123{n:04d}"}) for n in range(8)
    ]
    assert [a.status_code for a in answers] == [202] * 8
    ids = [a.json()["job_ids"][0] for a in answers]
    assert len(set(ids)) == 8
    assert jobstore.counts(real_redis)["queued"] == 8
    assert real_redis.llen("realtime") == 8
