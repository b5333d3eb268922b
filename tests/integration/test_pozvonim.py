"""Pozvonim callbacks end to end: real worker processes, the sandbox's Pozvonim."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tasks import comment
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from tests.integration.test_accounts import leads
from worker import jobstore, keys
from worker.pozvonim_sign import token_sign

pytestmark = pytest.mark.integration


def pozvonim_env(
    redis_url: str, sandbox: RunningSandbox, data: Path, key: str = "sandbox-key", **more: str
) -> dict[str, str]:
    return env_for(
        redis_url,
        sandbox,
        data,
        POZVONIM_API_URL=f"{sandbox.url}/v2u",
        POZVONIM_UID="1001",
        POZVONIM_API_KEY=key,
        **more,
    )


def write_calls(path: Path, count: int) -> list[str]:
    phones = [f"+7999070{n:04d}" for n in range(count)]
    path.write_text(
        "".join(
            json.dumps({"provider": "pozvonim", "site_id": 42, "phone": p}) + "\n" for p in phones
        )
    )
    return phones


def counts(url: str) -> dict[str, int]:
    return jobstore.counts(redis.Redis.from_url(url, decode_responses=True))


def test_100_calls_from_2_worker_processes_use_one_token_request(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    env = pozvonim_env(redis_url, sandbox, tmp_path / "data", POZVONIM_RATE_LIMIT="50/second")
    sandbox.server.sandbox.pozvonim_window.limit = 50
    start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    phones = write_calls(tmp_path / "calls.jsonl", 100)
    mixed = tmp_path / "calls.jsonl"
    mixed.write_text(mixed.read_text() + '{"routeKey": "rk", "phone": "79991234567"}\n')
    enqueued = run_ctq(["enqueue", "callback", "--file", str(mixed)], env)
    assert enqueued.returncode == 0, enqueued.stderr

    wait_for(lambda: counts(redis_url)["done"] == 101, timeout=120, interval=0.5)
    stats = requests.get(f"{sandbox.url}/_sandbox/pozvonim/stats", timeout=5).json()
    assert stats == {"token_requests": 1, "calls": 100}
    calls = [r for r in sandbox.accepted() if r["path"] == "/v2u/sites/42/call"]
    assert sorted(r["body"]["phone"] for r in calls) == sorted(phones)
    assert [r["path"] for r in sandbox.accepted() if "routeKey" in (r["body"] or {})] == [
        "/widget-service/v1/api/widget-request/user-form/create"
    ]


def test_a_wrong_key_pauses_the_lane_instead_of_100_dead_letters(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = pozvonim_env(redis_url, sandbox, tmp_path / "data", key="wrong-key")
    start_beat(env)
    start_worker(env)
    write_calls(tmp_path / "calls.jsonl", 100)
    assert (
        run_ctq(["enqueue", "callback", "--file", str(tmp_path / "calls.jsonl")], env).returncode
        == 0
    )

    wait_for(lambda: counts(redis_url)["paused"] + counts(redis_url)["delayed"] == 100, timeout=60)
    assert counts(redis_url)["dead"] == 0
    shown = run_ctq(["status"], env).stdout
    assert "PAUSED        site pozvonim-1001 realtime lane: account-level: bad credentials" in shown
    assert "(HTTP 403)" in shown
    assert "wrong-key" not in shown
    stats = requests.get(f"{sandbox.url}/_sandbox/pozvonim/stats", timeout=5).json()
    assert stats.get("calls", 0) == 0 and stats["token_requests"] <= 4


def test_no_debug_log_record_or_stored_answer_holds_the_key_or_the_token_signature(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = pozvonim_env(redis_url, sandbox, tmp_path / "data")
    start_beat(env)
    worker = start_worker(env, "-l", "DEBUG")
    write_calls(tmp_path / "calls.jsonl", 3)
    assert (
        run_ctq(["enqueue", "callback", "--file", str(tmp_path / "calls.jsonl")], env).returncode
        == 0
    )
    wait_for(lambda: counts(redis_url)["done"] == 3, timeout=60)

    log = worker.output()
    assert "/v2u/auth/token?uid=1001&sign=***" in log  # the request is logged, not its secret
    client = redis.Redis.from_url(redis_url)
    stored = b"".join(client.dump(key) or b"" for key in client.keys("*") if b"token" not in key)
    for secret in ("sandbox-key", token_sign("sandbox-key", "1001")):
        assert secret not in log
        assert secret.encode() not in stored


def test_pozvonim_has_its_own_limiter_key_and_rate_beside_a_calltouch_backlog(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Calltouch at its 5 a second (CTQ_RATE_LIMIT), Pozvonim at 2 a second of its own.
    env = pozvonim_env(redis_url, sandbox, tmp_path / "data", POZVONIM_RATE_LIMIT="2/second")
    start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    leads_file = tmp_path / "leads.jsonl"  # 20 comment requests: about 4 s of Calltouch's rate
    leads_file.write_text("".join(json.dumps(lead) + "\n" for lead in leads(2000, "x")))
    write_calls(tmp_path / "calls.jsonl", 6)
    for kind, path in (("comment", leads_file), ("callback", tmp_path / "calls.jsonl")):
        enqueued = run_ctq(["enqueue", kind, "--file", str(path)], env)
        assert enqueued.returncode == 0, enqueued.stderr
    wait_for(lambda: counts(redis_url)["done"] == 20 + 6, timeout=60, interval=0.5)

    log = sorted(sandbox.accepted(), key=lambda r: r["time"])
    calls = [r["time"] for r in log if r["path"] == "/v2u/sites/42/call"]
    sent = [r["time"] for r in log if r["path"] in ("/v2u/sites/42/call", comment.KIND.path)]
    assert len(calls) == 6 and len(sent) == 26
    # POZVONIM_RATE_LIMIT holds: no 3 calls within a second (less what a busy machine may add
    # to one send: its limiter keeps them the window and a 25 ms margin apart).
    assert min(b - a for a, b in zip(calls, calls[2:], strict=False)) > 0.9
    # Its own key: with both APIs busy, some second holds more than the 5 that one shared key
    # would allow (booked by Calltouch at 5 and Pozvonim at 2; two keys add up to 7).
    assert max(sum(t <= s < t + 1 for s in sent) for t in sent) > 5
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    host = sandbox.url.removeprefix("http://")
    for used in (keys.limiter("default", host), keys.limiter("default", f"{host}/v2u")):
        assert client.zcard(f"{used}:permits") > 0, used
