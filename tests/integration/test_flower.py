"""Flower on ctq's Celery app: every job shows by its id, kind and outcome, behind a login."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.conftest import RunningSandbox
from tests.helpers import (
    ROOT,
    TEST_TOKEN,
    WorkerProcess,
    free_port,
    run_ctq,
    stop_process_group,
    wait_for,
)

pytestmark = pytest.mark.integration

LOGIN = ("ops", "flower-pass-7c1e")


@pytest.fixture
def start_flower(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], tuple[str, Path]]]:
    """Start ``ctq flower`` on a free port; its URL and log. Stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> tuple[str, Path]:
        port, log = free_port(), tmp_path / f"flower{len(started)}.log"
        with open(log, "wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cli.main", "flower", "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return f"http://127.0.0.1:{port}", log

    yield start
    for flower in started:
        stop_process_group(flower)


def tasks_seen(url: str) -> dict[str, Any]:
    try:
        answer = requests.get(f"{url}/api/tasks", auth=LOGIN, timeout=5)
    except requests.ConnectionError:
        return {}
    return dict(answer.json()) if answer.ok else {}


def test_flower_shows_each_job_from_sent_to_its_outcome_behind_a_login(
    redis_url: str,
    real_redis: redis.Redis,
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_flower: Callable[[dict[str, str]], tuple[str, Path]],
) -> None:
    worker = start_worker(worker_env)
    patterns_before = real_redis.pubsub_numpat()
    env = {**worker_env, "FLOWER_BASIC_AUTH": ":".join(LOGIN)}
    url, log = start_flower(env)
    # Events are Redis pub/sub: Flower sees those published once it listens.
    wait_for(lambda: real_redis.pubsub_numpat() > patterns_before, timeout=60)

    enqueued = run_ctq(["enqueue", "callback", "--file", "-"], worker_env, stdin=CALLS)
    assert enqueued.returncode == 0, enqueued.stderr
    done_id, dead_id = enqueued.stdout.split()
    wait_for(lambda: {done_id, dead_id} <= set(tasks_seen(url)), timeout=60)
    wait_for(lambda: tasks_seen(url)[dead_id]["state"] == "SUCCESS", timeout=60)
    wait_for(lambda: tasks_seen(url)[done_id]["state"] == "SUCCESS", timeout=60)

    seen = tasks_seen(url)
    for job_id, outcome in ((done_id, "'done'"), (dead_id, "'dead'")):
        task = seen[job_id]
        assert task["name"] == "ctq.callback" and task["routing_key"] == "realtime"
        assert task["kwargs"] == repr({"job_id": job_id})
        assert task["result"] == outcome
        assert task["sent"] is not None  # the producer's task-sent event
        assert task["received"] is not None and task["succeeded"] is not None
    assert requests.get(f"{url}/api/tasks", timeout=5).status_code == 401
    for text in (log.read_text(), worker.output()):
        assert LOGIN[1] not in text and TEST_TOKEN not in text


CALLS = '{"routeKey": "rk", "phone": "79991234567"}\n{"routeKey": "rk", "phone": "79990010003"}\n'


def test_flower_without_logins_is_refused_beyond_loopback(worker_env: dict[str, str]) -> None:
    refused = run_ctq(["flower", "--address", "0.0.0.0", "--insecure-no-auth"], worker_env)
    assert refused.returncode == 2
    assert "--insecure-no-auth serves only on a loopback address" in refused.stderr
    refused = run_ctq(["flower"], worker_env)
    assert refused.returncode == 2 and "set FLOWER_BASIC_AUTH=user:password" in refused.stderr
