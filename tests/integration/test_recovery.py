"""A dead or frozen worker's jobs, and a message lost on its way to a worker, are back in
seconds, and sent once: real worker processes, a real redis-server, the sandbox;
CTQ_VISIBILITY_TIMEOUT stays at its 300 s default, so only ctq's own recovery can bring the
jobs back in time."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from tests.integration.test_faults import (
    at_rest,
    callbacks_file,
    counts,
    enqueue_file,
    sent_ok,
)

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]
RATE = 2  # requests a second: the workers' processes hold callbacks waiting for their slots


def held_by(env: dict[str, str], worker: WorkerProcess) -> int:
    """Jobs the worker's processes hold (heartbeats in `ctq status --json`)."""
    shown = json.loads(run_ctq(["status", "--json"], env).stdout)["workers"]
    return sum(len(w["jobs"]) for w in shown if w["pid"] in group(worker.process.pid))


def group(pgid: int) -> set[int]:
    """The processes of a process group (a worker and its pool), from /proc."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            pids.add(int(entry.name))
    return pids


def start_two_workers(
    redis_url: str, sandbox: RunningSandbox, start_worker: StartWorker, tmp: Path
) -> tuple[dict[str, str], WorkerProcess, list[str]]:
    env = env_for(redis_url, sandbox, tmp / "data", CTQ_RATE_LIMIT=f"{RATE}/second")
    victim = start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    phones = callbacks_file(tmp / "calls.jsonl", 16)
    enqueue_file(env, tmp / "calls.jsonl")
    return env, victim, phones


def test_a_killed_workers_callbacks_are_sent_by_another_within_seconds_and_once(
    redis_url: str, sandbox: RunningSandbox, start_worker: StartWorker, tmp_path: Path
) -> None:
    env, victim, phones = start_two_workers(redis_url, sandbox, start_worker, tmp_path)
    with at_rest(sandbox, redis_url, 3, timeout=60):
        assert held_by(env, victim) >= 2
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
    killed_at = time.monotonic()

    wait_for(lambda: counts(redis_url)["done"] == 16, timeout=60, interval=0.2)
    took = time.monotonic() - killed_at
    print(f"\nlast callback sent {took:.1f} s after the kill; ideal pace {(16 - 3) / RATE:.1f} s")
    left_at_kill = 16 - 3
    assert took < left_at_kill / RATE + 15, f"the last callback went out {took:.1f} s after"
    assert sent_ok(sandbox) == Counter(phones)  # every phone, each exactly once


def test_a_frozen_worker_sends_nothing_another_worker_took_over(
    redis_url: str, sandbox: RunningSandbox, start_worker: StartWorker, tmp_path: Path
) -> None:
    env, victim, phones = start_two_workers(redis_url, sandbox, start_worker, tmp_path)
    with at_rest(sandbox, redis_url, 3, timeout=60):
        assert held_by(env, victim) >= 2
        os.killpg(victim.process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: counts(redis_url)["done"] == 16, timeout=60, interval=0.2)
        time.sleep(max(0.0, 30 - 16 / RATE))  # frozen for 30 s in all
    finally:
        os.killpg(victim.process.pid, signal.SIGCONT)
    time.sleep(3)  # the frozen processes wake, find their leases gone, and send nothing
    assert victim.process.poll() is None
    assert sent_ok(sandbox) == Counter(phones)
    assert "lease lost before sending" in victim.output()


def test_a_message_taken_from_its_queue_and_never_recorded_is_replaced_and_sent_once(
    redis_url: str, sandbox: RunningSandbox, start_worker: StartWorker, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_LOST_MESSAGE_AFTER="3")
    phones = callbacks_file(tmp_path / "calls.jsonl", 10)
    enqueue_file(env, tmp_path / "calls.jsonl")
    # What Redis stopping between a worker's BRPOP and its reply leaves: the message popped,
    # in no queue and not among the unacked.
    with redis.Redis.from_url(redis_url) as client:
        lost = json.loads(client.rpop("realtime"))["headers"]["id"]  # type: ignore[arg-type]
    worker = start_worker(env, "-c", "2")

    wait_for(lambda: counts(redis_url)["done"] == 10, timeout=60, interval=0.2)
    assert sent_ok(sandbox) == Counter(phones)  # the lost one too, and every phone once
    assert f"job {lost}: its message was lost" in worker.output()


def test_status_lists_the_worker_processes_alive(
    worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    start_worker(worker_env, "-c", "2")
    workers: list[Any] = wait_for(
        lambda: json.loads(run_ctq(["status", "--json"], worker_env).stdout)["workers"]
    )
    assert len(workers) >= 2 and all(w["jobs"] == [] for w in workers)
    assert "worker        " in run_ctq(["status"], worker_env).stdout
