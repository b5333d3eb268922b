"""`ctq jobs` and `ctq cancel` against real workers, beat, Redis and the sandbox."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from cli.common import when
from tests.conftest import RunningSandbox, WorkerProcess
from tests.helpers import run_ctq, wait_for
from worker import keys

pytestmark = pytest.mark.integration


def callback(phone: str) -> str:
    return json.dumps({"routeKey": "rk", "phone": phone})


def enqueue(env: dict[str, str], phone: str, *options: str) -> str:
    done = run_ctq(["enqueue", "callback", callback(phone), *options], env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def phones_sent(sandbox: RunningSandbox) -> list[str]:
    return [r["body"]["phone"] for r in sandbox.accepted()]


def jobs(env: dict[str, str], *options: str) -> list[dict[str, Any]]:
    done = run_ctq(["jobs", *options, "--json"], env)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_scheduled_job_is_listed_with_its_due_time_and_once_cancelled_is_never_sent(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    real_redis: redis.Redis,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[[dict[str, str]], subprocess.Popen[bytes]],
) -> None:
    start_worker(worker_env)
    start_beat(worker_env)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    job_id = enqueue(worker_env, "79990000101", "--at", due.isoformat())

    listed = run_ctq(["jobs", "--state", "delayed"], worker_env)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith(f"{job_id}  callback      delayed   attempts 0")
    assert f"due {when(due.timestamp())}" in line

    cancelled = run_ctq(["cancel", job_id], worker_env)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"{job_id} cancelled (was delayed)\n")
    assert jobs(worker_env, "--state", "delayed") == []
    [shown] = jobs(worker_env, "--state", "cancelled")
    assert (shown["id"], shown["state"], shown["due_at"]) == (job_id, "cancelled", None)

    # Even if it became due (a late write put it back in the delay set), beat drops it.
    real_redis.zadd(keys.DELAYED, {job_id: time.time()})
    enqueue(worker_env, "79990000102")
    wait_for(lambda: "79990000102" in phones_sent(sandbox))
    wait_for(lambda: real_redis.zcard(keys.DELAYED) == 0)
    time.sleep(1.0)
    assert phones_sent(sandbox) == ["79990000102"]
    status = run_ctq(["status"], worker_env).stdout
    assert "cancelled 1" in status and "done 1" in status


def test_a_cancelled_queued_job_whose_message_a_worker_takes_is_not_sent(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    real_redis: redis.Redis,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    job_id = enqueue(worker_env, "79990000201")  # no worker yet: its message waits in the queue
    assert [j["id"] for j in jobs(worker_env, "--state", "queued", "--kind", "callback")] == [
        job_id
    ]
    assert run_ctq(["cancel", job_id], worker_env).returncode == 0
    assert real_redis.llen(keys.REALTIME) == 1  # the message is still there

    start_worker(worker_env)
    enqueue(worker_env, "79990000202")
    wait_for(lambda: "79990000202" in phones_sent(sandbox))
    wait_for(
        lambda: real_redis.llen(keys.REALTIME) == 0 and real_redis.hlen(keys.KOMBU_UNACKED) == 0
    )
    assert phones_sent(sandbox) == ["79990000202"]
    assert [j["state"] for j in jobs(worker_env)] == ["done", "cancelled"]


def test_a_running_job_a_finished_job_and_an_unknown_id_cannot_be_cancelled(
    worker_env: dict[str, str],
    start_sandbox: Callable[..., RunningSandbox],
    real_redis: redis.Redis,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Every request takes 10 s to arrive: long enough to ask for the cancel on a loaded machine.
    slow = start_sandbox(latency=(10.0, 10.0))
    env = {**worker_env, "CALLTOUCH_API_URL": slow.url}
    start_worker(env)
    running = enqueue(env, "79990000301")
    wait_for(lambda: [j["id"] for j in jobs(env, "--state", "running")] == [running])

    refused = run_ctq(["cancel", running, "feedface"], env)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"ctq: job {running} is running (a worker has it): too late to cancel",
        "ctq: no job feedface (unknown, or expired after the retention period)",
    ]
    wait_for(lambda: [j["state"] for j in jobs(env)] == ["done"], timeout=30)
    finished = run_ctq(["cancel", running], env)
    assert finished.returncode == 1
    assert finished.stderr == f"ctq: job {running} is done already: too late to cancel\n"
    assert [r["body"]["phone"] for r in slow.accepted()] == ["79990000301"]
