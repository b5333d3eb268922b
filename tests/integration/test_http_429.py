"""Real 429s from the sandbox, met by real worker processes: the limiter key pauses for every
worker (for the answer's Retry-After), the job books a new permit, and no attempt is used."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from tests.integration.test_faults import callbacks_file, counts, enqueue_file, sent_ok
from worker import jobstore

pytestmark = pytest.mark.integration

# A request sent before the 429 came back reaches the API after it: a few ms on loopback,
# more on a loaded machine. The pauses tested are 1 and 2 s, so a worker that ignored one
# would still send inside what is left of it.
IN_FLIGHT = 0.5


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    # Retry-After: 2 is twice the default pause, so a worker that ignored it would show.
    [(2, 2.0), (None, 1.0)],
    ids=["Retry-After 2", "no Retry-After: one window"],
)
def test_a_429_pauses_every_worker_and_uses_no_attempt(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
    retry_after: int | None,
    pause: float,
) -> None:
    # The workers believe in 6 requests a second, the API allows 5: every 6th meets a 429.
    sandbox = start_sandbox(rate=5, retry_after=retry_after)
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_RATE_LIMIT="6/second")
    start_worker(env)
    start_worker(env)
    phones = callbacks_file(tmp_path / "calls.jsonl", 15)
    job_ids = enqueue_file(env, tmp_path / "calls.jsonl")

    wait_for(lambda: counts(redis_url)["done"] == 15, timeout=90, interval=0.5)
    assert sent_ok(sandbox) == Counter(phones)  # every phone accepted exactly once
    log = sorted(sandbox.received(), key=lambda r: r["time"])
    too_many = [r for r in log if r["status"] == 429]
    assert too_many, "the sandbox never answered 429: nothing was tested"
    assert {r["status"] for r in log} == {200, 429}

    # Honoured by every worker: after a 429 nothing more reaches the API until the pause
    # has passed, except a request already on its way when the 429 came back.
    for seen in too_many:
        after = [round(r["time"] - seen["time"], 3) for r in log if r["time"] > seen["time"]]
        assert [s for s in after if IN_FLIGHT < s < pause] == [], after

    # The 429s used no attempt: each job was done after its one accepted request.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    jobs = [jobstore.load(client, job_id) for job_id in job_ids]
    assert [(job.state, job.attempts) for job in jobs if job] == [("done", 1)] * 15
    met_429 = job_ids[phones.index(too_many[0]["body"]["phone"])]
    shown = json.loads(run_ctq(["status", met_429, "--json"], env).stdout)
    assert (shown["state"], shown["attempts"], shown["last"]["outcome"]) == ("done", 1, "done")

    # Each 429 paused the limiter key and was counted there (ctq status, ctq_http_429_total).
    status = json.loads(run_ctq(["status", "--json"], env).stdout)
    [limiter] = [lim for name, lim in status["limiters"].items() if "127.0.0.1" in name]
    assert limiter["http_429"] == len(too_many)
