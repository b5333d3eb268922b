"""Nightly lead tagging: staged leads, the run, the points budget, one run per day."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from config import Settings
from scheduler.beat import beat_schedule
from scheduler.nightly import scheduled_run
from tasks.producer import Producer
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from worker import jobstore, keys

pytestmark = pytest.mark.integration


def write_leads(path: Path, count: int) -> list[str]:
    comments = [f"nightly lead {n}" for n in range(count)]
    path.write_text(
        "".join(
            json.dumps(
                {
                    "matching": [{"type": "call", "callParams": {"callId": 10_000 + n}}],
                    "addComment": c,
                }
            )
            + "\n"
            for n, c in enumerate(comments)
        )
    )
    return comments


def test_10000_staged_leads_go_out_in_100_requests_each_commented_once(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    sandbox = start_sandbox(rate=50)
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_RATE_LIMIT="50/second")
    comments = write_leads(tmp_path / "leads.jsonl", 10_000)
    staged = run_ctq(["stage", "comment", "--file", str(tmp_path / "leads.jsonl")], env)
    assert staged.stdout.startswith("10000 lead(s) staged for the nightly run at 02:00")
    assert "staged leads  10000" in run_ctq(["status"], env).stdout

    start_worker(env, "-c", "4")
    ran = run_ctq(["nightly", "run"], env)
    assert ran.stdout.strip() == "sent 10000 lead(s) in 100 request(s); 0 left staged"

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: jobstore.counts(client)["done"] == 100, timeout=120, interval=0.5)
    sent = [r for r in sandbox.accepted() if r["status"] == 200]
    assert len(sent) == 100 and all(len(r["body"]["comments"]) == 100 for r in sent)
    commented = Counter(lead["addComment"] for r in sent for lead in r["body"]["comments"])
    assert commented == Counter(comments)  # every lead, once
    assert client.llen(keys.STAGED_COMMENTS) == 0


def test_a_run_that_hits_the_points_budget_leaves_the_rest_staged(
    redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_DAILY_POINTS="30")
    write_leads(tmp_path / "leads.jsonl", 5_000)
    run_ctq(["stage", "comment", "--file", str(tmp_path / "leads.jsonl")], env)
    ran = json.loads(run_ctq(["nightly", "run", "--json"], env).stdout)
    # 30 points, 10 % kept for realtime: bulk may spend 27 → 27 requests of 100 leads.
    first = {"leads": 2700, "requests": 27, "left_staged": 2300, "skipped": False}
    assert ran == {**first, "accounts": {"default": first}}
    again = json.loads(run_ctq(["nightly", "run", "--json"], env).stdout)
    # The first run's 27 jobs are still queued: they will spend what is left today.
    second = {"leads": 0, "requests": 0, "left_staged": 2300, "skipped": False}
    assert again == {**second, "accounts": {"default": second}}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.llen(keys.STAGED_COMMENTS) == again["left_staged"]


def test_invalid_leads_are_refused_and_nothing_is_staged(
    redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    path = tmp_path / "leads.jsonl"
    write_leads(path, 3)
    path.write_text(path.read_text() + '{"matching": [], "addComment": ""}\n')
    refused = run_ctq(["stage", "comment", "--file", str(path)], env)
    assert refused.returncode == 2
    assert "line 4: matching: List should have at least 1 item" in refused.stderr
    assert redis.Redis.from_url(redis_url).llen(keys.STAGED_COMMENTS) == 0


def test_two_beats_never_send_the_batch_twice(redis_url: str, tmp_path: Path) -> None:
    settings = Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path))
    producer = Producer(settings)
    lead = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": "x"}
    producer.stage_comments([lead] * 150)
    first, second = scheduled_run(producer), scheduled_run(producer)
    assert (first.requests, first.skipped) == (2, False)
    assert (second.requests, second.skipped) == (0, True)
    assert jobstore.counts(producer.redis)["queued"] == 2


def test_the_run_is_scheduled_at_ctq_nightly_at_in_ctq_timezone() -> None:
    settings = Settings(_env_file=None, CTQ_NIGHTLY_AT="03:30", CTQ_TIMEZONE="Asia/Vladivostok")
    entry = beat_schedule(settings)["nightly-lead-tagging"]
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
    from worker.celery_app import create_app

    assert create_app(settings, "redis://127.0.0.1:1/0").conf.timezone == "Asia/Vladivostok"
