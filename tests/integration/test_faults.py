"""Nothing lost, nothing sent twice: killed workers, a restarted Redis, injected faults, an
account-level error, duplicate enqueues, graceful shutdown — with real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from sandbox.faults import FaultPlan
from tests.conftest import RunningSandbox, env_for
from tests.helpers import TEST_TOKEN, RedisServer, WorkerProcess, free_port, run_ctq, wait_for
from worker import jobstore

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]


def callbacks_file(path: Path, count: int, first_phone: int = 79_990_500_000) -> list[str]:
    phones = [str(first_phone + n) for n in range(count)]
    path.write_text("".join(json.dumps({"routeKey": "rk", "phone": p}) + "\n" for p in phones))
    return phones


def enqueue_file(env: dict[str, str], path: Path, kind: str = "callback") -> list[str]:
    done = run_ctq(["enqueue", kind, "--file", str(path)], env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def counts(url: str) -> dict[str, int]:
    return jobstore.counts(redis.Redis.from_url(url, decode_responses=True))


def sent_ok(sandbox: RunningSandbox) -> Counter[str]:
    """How many times each phone was answered 200."""
    return Counter(r["body"]["phone"] for r in sandbox.accepted() if r["status"] == 200)


def accepted_so_far(sandbox: RunningSandbox) -> int:
    state = sandbox.server.sandbox
    with state.lock:
        return sum(1 for r in state.requests if r["status"] == 200)


@contextmanager
def at_rest(
    sandbox: RunningSandbox, redis_url: str, sent: int, timeout: float = 120
) -> Iterator[None]:
    """After the ``sent``-th success, shut the sandbox (requests meanwhile get 503, processed
    by nothing, and are retried) and wait until every success it answered is recorded done: no
    request is between the API's answer and its record while the body runs. That window is in
    the README; the fault tests are about everything else."""
    wait_for(lambda: accepted_so_far(sandbox) >= sent, timeout=timeout, interval=0.002)
    sandbox.server.sandbox.shut()
    try:
        wait_for(lambda: counts(redis_url)["done"] == accepted_so_far(sandbox), timeout=30)
        yield
    finally:
        sandbox.server.sandbox.reopen()


def kill_at_rest(sandbox: RunningSandbox, redis_url: str, worker: WorkerProcess, sent: int) -> None:
    """SIGKILL the worker (all its processes) after the ``sent``-th success, at rest."""
    with at_rest(sandbox, redis_url, sent):
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()


def test_workers_killed_with_sigkill_lose_nothing_and_send_each_phone_once(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    sandbox = start_sandbox(rate=20)
    env = env_for(
        redis_url,
        sandbox,
        tmp_path / "data",
        CTQ_RATE_LIMIT="20/second",
        CTQ_VISIBILITY_TIMEOUT="10",
        CTQ_CONNECT_TIMEOUT="0.5",
        CTQ_READ_TIMEOUT="1",
        CTQ_INPROCESS_WAIT_MAX="0.9",
    )
    start_beat(env)
    victim = start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    phones = callbacks_file(tmp_path / "calls.jsonl", 500)
    enqueue_file(env, tmp_path / "calls.jsonl")

    kill_at_rest(sandbox, redis_url, victim, 100)
    victim = start_worker(env, "-c", "4")
    kill_at_rest(sandbox, redis_url, victim, 300)
    start_worker(env, "-c", "4")

    wait_for(lambda: counts(redis_url)["done"] == 500, timeout=240, interval=0.5)
    assert sent_ok(sandbox) == Counter(phones)  # every phone, each exactly once
    assert counts(redis_url)["dead"] == 0


def test_redis_stopped_for_10_s_with_requests_in_flight_sends_nothing_twice(
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = RedisServer(free_port(), tmp_path)
    server.start("--appendonly", "yes", "--appendfsync", "always")
    try:
        # Every answer takes 0.3-0.8 s, so the 8 worker processes always have requests in flight.
        sandbox = start_sandbox(rate=20, latency=(0.3, 0.8))
        env = env_for(
            server.url,
            sandbox,
            tmp_path / "data",
            CTQ_RATE_LIMIT="20/second",
            CTQ_VISIBILITY_TIMEOUT="60",
            CTQ_READ_TIMEOUT="5",
            CTQ_INPROCESS_WAIT_MAX="2",
        )
        start_beat(env)
        workers = [start_worker(env, "-c", "4"), start_worker(env, "-c", "4")]
        phones = callbacks_file(tmp_path / "calls.jsonl", 120)
        enqueue_file(env, tmp_path / "calls.jsonl")
        wait_for(lambda: accepted_so_far(sandbox) >= 30, timeout=60, interval=0.01)

        server.stop()  # a clean stop: redis-server flushes its append-only file
        time.sleep(10)
        server.start("--appendonly", "yes", "--appendfsync", "always")

        wait_for(lambda: counts(server.url)["done"] == 120, timeout=180, interval=0.5)
        assert sent_ok(sandbox) == Counter(phones)  # every phone, each exactly once
        final = counts(server.url)
        assert (final["dead"], final["running"], final["retrying"]) == (0, 0, 0)
        for worker in workers:  # both rode the outage out: none stopped on a kombu error
            assert worker.process.poll() is None
            assert "Unrecoverable error" not in worker.output()
    finally:
        server.stop()


def test_20_percent_faults_are_retried_until_every_job_is_delivered_once(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    faults = FaultPlan(rate=0.2, slow_seconds=1.0)
    sandbox = start_sandbox(rate=50, faults=faults)
    env = env_for(
        redis_url,
        sandbox,
        tmp_path / "data",
        CTQ_RATE_LIMIT="50/second",
        CTQ_READ_TIMEOUT="0.5",
        CTQ_MAX_ATTEMPTS="30",
        CTQ_BACKOFF_MAX="0.5",
    )
    start_beat(env)
    start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    phones = callbacks_file(tmp_path / "calls.jsonl", 300)
    enqueue_file(env, tmp_path / "calls.jsonl")

    wait_for(lambda: counts(redis_url)["done"] == 300, timeout=240, interval=0.5)
    faulted = Counter(str(r["status"]) for r in sandbox.received() if r["status"] != 200)
    assert sum(faulted.values()) > 30, faulted  # the faults did happen
    assert sent_ok(sandbox) == Counter(phones)
    assert counts(redis_url)["dead"] == 0


def test_duplicate_enqueues_with_one_key_make_one_request(
    worker_env: dict[str, str], sandbox: RunningSandbox, start_worker: StartWorker
) -> None:
    start_worker(worker_env)
    body = '{"phoneNumber": "74950000001", "poolName": "main"}'
    first = run_ctq(["enqueue", "pool-update", body, "--idempotency-key", "order-1"], worker_env)
    again = run_ctq(["enqueue", "pool-update", body, "--idempotency-key", "order-1"], worker_env)
    assert first.stdout == again.stdout and first.stdout.strip()
    wait_for(lambda: counts(worker_env["REDIS_URL"])["done"] == 1)
    time.sleep(1)  # give a second request, if there were one, time to arrive
    assert len(sandbox.accepted()) == 1
    assert "beat          never seen: start `ctq beat`" in run_ctq(["status"], worker_env).stdout


def test_an_account_level_error_pauses_the_lane_and_resumes_after_the_probe(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_BREAKER_PROBE_INTERVAL="3")
    sandbox.account(callback_minutes=False)
    start_beat(env)
    start_worker(env)
    phones = callbacks_file(tmp_path / "calls.jsonl", 6)
    enqueue_file(env, tmp_path / "calls.jsonl")

    wait_for(lambda: counts(redis_url)["paused"] == 5)
    shown = run_ctq(["status"], env).stdout
    assert "PAUSED        site 777 realtime lane: account-level: no callback minutes left" in shown
    assert "(code 10001)" in shown and "5 job(s) held" in shown
    assert "beat          last tick" in shown
    assert counts(redis_url)["dead"] == 0

    sandbox.account(callback_minutes=True)
    wait_for(lambda: counts(redis_url)["done"] == 6, timeout=60)
    assert sent_ok(sandbox) == Counter(phones)
    assert "PAUSED" not in run_ctq(["status"], env).stdout
    assert counts(redis_url)["dead"] == 0


def test_ctq_resume_lifts_a_pause_by_hand(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")  # probe only after 300 s
    sandbox.account(callback_minutes=False)
    start_beat(env)
    start_worker(env)
    callbacks_file(tmp_path / "calls.jsonl", 3)
    enqueue_file(env, tmp_path / "calls.jsonl")
    wait_for(lambda: counts(redis_url)["paused"] == 2)
    sandbox.account(callback_minutes=True)

    resumed = run_ctq(["resume"], env)
    assert "resumed site 777 realtime lane" in resumed.stdout and "2 held job(s)" in resumed.stdout
    wait_for(lambda: counts(redis_url)["done"] == 2, timeout=30)  # the probe itself waits 300 s
    assert counts(redis_url)["delayed"] == 1


def test_sigterm_lets_in_flight_jobs_finish_and_loses_nothing(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    worker = start_worker(worker_env, "-c", "4")
    phones = callbacks_file(tmp_path / "calls.jsonl", 20)
    enqueue_file(worker_env, tmp_path / "calls.jsonl")
    wait_for(lambda: accepted_so_far(sandbox) >= 3, interval=0.01)

    worker.process.send_signal(signal.SIGTERM)  # to the worker's main process, as docker does
    assert worker.process.wait(60) == 0
    assert "Warm shutdown" in worker.output()
    in_flight_then = counts(worker_env["REDIS_URL"])
    assert in_flight_then["running"] == 0 and in_flight_then["retrying"] == 0

    start_worker(worker_env, "-c", "4")
    wait_for(lambda: counts(worker_env["REDIS_URL"])["done"] == 20, timeout=60)
    assert sent_ok(sandbox) == Counter(phones)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_key_log_record_or_status_output_holds_the_token(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
    log_format: str,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_LOG_FORMAT=log_format)
    start_beat(env)
    worker = start_worker(env, "-l", "DEBUG")
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"routeKey": "rk", "phone": "79990010003"}\n{"routeKey": "rk", "phone": "79991234567"}\n'
    )
    enqueue_file(env, path)
    wait_for(lambda: counts(redis_url)["done"] + counts(redis_url)["dead"] == 2)

    client = redis.Redis.from_url(redis_url)
    stored = b"".join(client.dump(key) or b"" for key in client.keys("*"))
    outputs = [
        run_ctq(args, env).stdout
        for args in (["status", "--json"], ["status"], ["dlq", "list", "--json"])
    ]
    logs = [worker.output(), *(p.read_text() for p in tmp_path.glob("beat*.log"))]
    assert TEST_TOKEN.encode() not in stored
    for text in (*outputs, *logs):
        assert TEST_TOKEN not in text
    if log_format == "json":  # every line an object, DEBUG and Celery's own lines too
        lines = [json.loads(line) for text in logs for line in text.splitlines()]
        assert {"worker.records", "celery.app.trace", "celery.beat"} <= {x["logger"] for x in lines}


def test_points_reserved_by_a_killed_worker_come_back_by_themselves(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    sandbox = start_sandbox(rate=20, latency=(3.0, 3.0))  # the worker dies mid-request
    env = env_for(
        redis_url,
        sandbox,
        tmp_path / "data",
        CTQ_RATE_LIMIT="20/second",
        CTQ_DAILY_POINTS="50",
        CTQ_CONNECT_TIMEOUT="1",
        CTQ_READ_TIMEOUT="5",
        CTQ_INPROCESS_WAIT_MAX="2",
        CTQ_VISIBILITY_TIMEOUT="40",
    )
    victim = start_worker(env, "-c", "4")
    callbacks_file(tmp_path / "calls.jsonl", 8)
    enqueue_file(env, tmp_path / "calls.jsonl")

    def points() -> dict[str, Any]:
        return json.loads(run_ctq(["status", "--json"], env).stdout)["points_today"]["777"]

    wait_for(lambda: points()["reserved"] == 4, timeout=30, interval=0.2)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    # A reservation lapses once its request can no longer be in flight: 1 + 5 + 2 s after its slot.
    wait_for(lambda: points()["reserved"] == 0, timeout=20, interval=0.5)
    assert points()["left"] == 50 - points()["used"]


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, 403), (400, 10099)],
    ids=["a revoked token whose 403 carries its own code", "an undocumented points-spent code"],
)
def test_an_account_wide_error_pauses_the_lane_and_dead_letters_nothing(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
    status: int,
    code: int,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    sandbox.account(answer={"status": status, "code": code})
    start_beat(env)
    start_worker(env, "-c", "4")
    callbacks_file(tmp_path / "calls.jsonl", 20)
    enqueue_file(env, tmp_path / "calls.jsonl")

    wait_for(lambda: counts(redis_url)["paused"] >= 15, timeout=60)
    time.sleep(2)  # time for any wrong dead letter to appear
    assert counts(redis_url)["dead"] == 0
    assert "PAUSED        site 777 realtime lane: account-level" in run_ctq(["status"], env).stdout
    assert len(sandbox.received()) <= 8  # the lane stopped at the wall, not 20 requests into it
