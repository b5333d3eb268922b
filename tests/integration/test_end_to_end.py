"""Real redis-server, real `ctq worker` processes, the sandbox on loopback, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RunningSandbox, WorkerProcess
from tests.helpers import SITE_ID, TEST_TOKEN, run_ctq, wait_for

pytestmark = pytest.mark.integration

CALLBACK = {
    "routeKey": "rk-1",
    "phone": "79991234567",
    "tags": ["site"],
    "fields": [{"name": "Имя", "value": "Иван"}],
}
POOL_UPDATE = {
    "phoneNumber": "74950000001",
    "displayOptions": {"source": "yandex"},
    "redirectOptions": {
        "redirectType": "PSTN",
        "ptsnOptions": {"redirectNumber": "79990000002"},
        "reserveRedirect": {"reserveNumber": "79990000003", "reserveTimeOut": 20},
    },
}
LEADS = [
    {"matching": [{"type": "call", "callParams": {"callId": 41}}], "addComment": "hot lead"},
    {
        "matching": [{"type": "request", "requestParams": {"requestId": 42}}],
        "addComment": "[no-lead] x",
    },
]


def enqueue(env: dict[str, str], kind: str, *items: dict[str, Any]) -> list[str]:
    text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
    done = run_ctq(["enqueue", kind, "--file", "-"], env, stdin=text)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def status(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = run_ctq(["status", *args, "--json"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_one_job_of_each_kind_reaches_the_api_and_is_done(
    worker_env: dict[str, str], sandbox: RunningSandbox, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker(worker_env)
    [callback_id] = enqueue(worker_env, "callback", CALLBACK)
    [pool_id] = enqueue(worker_env, "pool-update", POOL_UPDATE)
    [comment_id] = enqueue(worker_env, "comment", *LEADS)

    wait_for(lambda: status(worker_env)["jobs"]["done"] == 3)
    received = {r["path"]: r for r in sandbox.accepted()}
    assert {path: r["body"] for path, r in received.items()} == {
        "/widget-service/v1/api/widget-request/user-form/create": CALLBACK,
        "/phone-service/v1/api/calltracking/ad-platform/phone/update": {
            **POOL_UPDATE,
            "redirectOptions": {
                **POOL_UPDATE["redirectOptions"],
                "reserveRedirect": {
                    "reserveNumber": "79990000003",
                    "reserveTimeOut": 20,
                    "ignoreEarlyMedia": True,
                },
            },
        },
        "/lead-service/v1/api/comment/lead/add": {"comments": LEADS},
    }
    assert {(r["site_id"], r["token"], r["content_type"]) for r in received.values()} == {
        (SITE_ID, "valid", "application/json")
    }

    for job_id in (callback_id, pool_id):
        job = status(worker_env, job_id)
        assert (job["state"], job["attempts"], job["last"]["outcome"]) == ("done", 1, "done")
    job = status(worker_env, comment_id)
    assert job["lead_results"] == [
        {"commented": True, "error": None, "callId": 41, "requestId": None},
        {"commented": False, "error": "Lead not found", "callId": None, "requestId": None},
    ]
    human = run_ctq(["status", comment_id], worker_env).stdout
    assert "lead 0    commented call 41" in human and "lead 1    error: Lead not found" in human


def test_refused_and_exhausted_jobs_are_dead_lettered_and_listed(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    worker = start_worker(worker_env)
    [refused] = enqueue(worker_env, "callback", {"routeKey": "rk", "phone": "79990010003"})
    [flaky] = enqueue(worker_env, "callback", {"routeKey": "rk", "phone": "79990000503"})
    wait_for(lambda: status(worker_env)["jobs"]["dead"] == 2)

    listed = json.loads(run_ctq(["dlq", "list", "--json"], worker_env).stdout)
    by_id = {record["id"]: record for record in listed}
    assert (by_id[refused]["code"], by_id[refused]["attempts"]) == (10003, 1)
    assert by_id[refused]["payload"] == {"routeKey": "rk", "phone": "79990010003"}
    assert (by_id[flaky]["http_status"], by_id[flaky]["attempts"]) == (503, 4)
    assert by_id[flaky]["reason"].startswith("gave up after 4 attempts")
    assert len([r for r in sandbox.received() if r["body"]["phone"] == "79990000503"]) == 4

    text = run_ctq(["dlq", "list"], worker_env).stdout
    assert f"{refused}" in text and "code 10003" in text
    assert f"{flaky}" in text and "HTTP 503" in text  # a status, not an API code
    everything = json.dumps({k: real_redis.dump(k).hex() for k in real_redis.keys("*")})  # type: ignore[union-attr]
    for place in (everything, worker.output(), text):
        assert TEST_TOKEN not in place and TEST_TOKEN.encode().hex() not in place


def test_invalid_input_through_the_cli_is_refused_and_nothing_is_enqueued(
    worker_env: dict[str, str], real_redis: redis.Redis, tmp_path: Path
) -> None:
    lines = [
        json.dumps(LEADS[0]),
        json.dumps({"matching": [], "addComment": "x"}),
        "{not json",
        json.dumps({**LEADS[0], "addComment": "y" * 1001}),
    ]
    bad = tmp_path / "leads.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    before = real_redis.dbsize()

    refused = run_ctq(["enqueue", "comment", "--file", str(bad)], worker_env)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "line 3: (json): not valid JSON" in refused.stderr

    bad.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    refused = run_ctq(["enqueue", "comment", "--file", str(bad)], worker_env)
    assert refused.returncode == 2
    assert (
        "line 2: matching: List should have at least 1 item after validation, not 0"
        in refused.stderr
    )
    assert "line 3: addComment: String should have at most 1000 characters" in refused.stderr

    refused = run_ctq(
        ["enqueue", "callback", '{"routeKey": "rk", "phone": "88001234567"}'], worker_env
    )
    assert (refused.returncode, refused.stderr.splitlines()[0]) == (
        2,
        "line 1: phone: must be 11 digits 7xxxxxxxxxx, e.g. 79991234567, got '88001234567'",
    )
    assert real_redis.dbsize() == before == 0


def test_unreachable_redis_exits_with_status_3(worker_env: dict[str, str]) -> None:
    env = {**worker_env, "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = run_ctq(["enqueue", "callback", '{"routeKey": "rk", "phone": "79991234567"}'], env)
    assert done.returncode == 3 and "nothing was enqueued" in done.stderr
    assert run_ctq(["status"], env).returncode == 3


def test_dead_letters_can_be_replayed_and_purged(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    start_worker(worker_env)
    [widget] = enqueue(worker_env, "callback", {"routeKey": "rk", "phone": "79990010003"})
    [session] = enqueue(worker_env, "callback", {"routeKey": "rk", "phone": "79990010004"})
    wait_for(lambda: status(worker_env)["dead_letters"] == 2)

    replayed = run_ctq(["dlq", "replay", "--code", "10003", "--json"], worker_env)
    assert replayed.returncode == 0, replayed.stderr
    new_id = json.loads(replayed.stdout)["enqueued"][widget]
    again = run_ctq(["dlq", "replay", widget, "--json"], worker_env)
    assert again.returncode == 1  # already replayed: its record is gone
    assert f"no dead letter {widget}; nothing was replayed" in again.stderr
    wait_for(lambda: status(worker_env, new_id)["state"] == "dead")
    assert len([r for r in sandbox.received() if r["body"]["phone"] == "79990010003"]) == 2

    assert run_ctq(["dlq", "purge"], worker_env).returncode == 2  # nothing named
    purged = run_ctq(["dlq", "purge", session], worker_env)
    assert purged.stdout.strip() == "purged 1 dead letter(s)"
    listed = json.loads(run_ctq(["dlq", "list", "--json"], worker_env).stdout)
    assert [r["id"] for r in listed] == [new_id]
    assert (
        run_ctq(["dlq", "purge", "--all"], worker_env).stdout.strip() == "purged 1 dead letter(s)"
    )


def test_a_job_enqueued_for_later_waits_durably_until_then(
    worker_env: dict[str, str], real_redis: redis.Redis
) -> None:
    done = run_ctq(
        [
            "enqueue",
            "pool-update",
            '{"phoneNumber": "74950000001", "poolName": "p"}',
            "--at",
            "2030-01-01T09:00:00",
        ],
        worker_env,
    )
    assert done.returncode == 0, done.stderr
    [job_id] = done.stdout.split()
    due = real_redis.zscore("ctq:delayed", job_id)
    assert due == 1893477600.0  # 09:00 in Europe/Moscow (UTC+3)
    assert status(worker_env)["jobs"]["delayed"] == 1
    bad = run_ctq(
        [
            "enqueue",
            "pool-update",
            '{"phoneNumber": "74950000001", "poolName": "p"}',
            "--at",
            "tomorrow",
        ],
        worker_env,
    )
    assert bad.returncode == 2
    assert bad.stderr == (
        "ctq enqueue: argument --at: not an ISO 8601 time like 2026-11-23T10:00:00+03:00: "
        "'tomorrow' (see ctq enqueue --help)\n"
    )


def test_a_worker_refuses_timeouts_that_could_send_a_job_twice(worker_env: dict[str, str]) -> None:
    env = {**worker_env, "CTQ_VISIBILITY_TIMEOUT": "15", "CTQ_READ_TIMEOUT": "30"}
    refused = run_ctq(["worker"], env)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "configuration: CTQ_VISIBILITY_TIMEOUT (15 s) must be at least 4 x (CTQ_CONNECT_TIMEOUT"
    )
