"""Large files through the real CLI: streamed, enqueued whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.helpers import ctq_env, run_ctq
from worker import jobstore, keys

pytestmark = pytest.mark.integration


def write_leads(path: Path, count: int, bad_after: int | None = None) -> Path:
    """``count`` leads, one a line; past line ``bad_after``, every fifth has an empty comment."""
    with path.open("w") as out:
        for n in range(1, count + 1):
            bad = bad_after is not None and n > bad_after and n % 5 == 0
            lead = {
                "matching": [{"type": "call", "callParams": {"callId": n}}],
                "addComment": "" if bad else f"lead {n}",
            }
            out.write(json.dumps(lead) + "\n")
    return path


def test_a_20000_lead_file_is_enqueued_as_200_jobs(
    redis_url: str, real_redis: redis.Redis, tmp_path: Path
) -> None:
    env = ctq_env(REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path / "data"))
    path = write_leads(tmp_path / "leads.jsonl", 20_000)

    done = run_ctq(["enqueue", "comment", "--file", str(path)], env)
    assert done.returncode == 0, done.stderr
    job_ids = done.stdout.split()
    assert len(job_ids) == len(set(job_ids)) == 200
    queued = [json.loads(m)["headers"]["id"] for m in real_redis.lrange(keys.BULK, 0, -1)]
    assert queued[::-1] == job_ids  # 200 messages, the first line's job first
    last = jobstore.load(real_redis, job_ids[-1])
    assert last and [c["addComment"] for c in last.payload["comments"]] == [
        f"lead {n}" for n in range(19_901, 20_001)
    ]
    assert jobstore.counts(real_redis)["queued"] == 200
    assert real_redis.keys("ctq:batch:*") == [real_redis.keys("ctq:batch:*:receipt")[0]]  # type: ignore[index]

    again = run_ctq(["enqueue", "comment", "--file", str(path)], env)
    assert again.stdout.split() == job_ids and "200 of 200 job(s) were enqueued before" in (
        again.stderr
    )
    assert real_redis.llen(keys.BULK) == 200


def test_a_large_bad_file_lists_its_first_1000_problems_and_enqueues_nothing(
    redis_url: str, real_redis: redis.Redis, tmp_path: Path
) -> None:
    env = ctq_env(REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path / "data"))
    # The first 10,000 leads are good: 100 jobs are staged (then discarded) before the first
    # of 2,000 bad lines.
    path = write_leads(tmp_path / "leads.jsonl", 20_000, bad_after=10_000)

    for command, nothing_was in (("enqueue", "enqueued"), ("stage", "staged")):
        refused = run_ctq([command, "comment", "--file", str(path)], env)
        assert refused.returncode == 2 and refused.stdout == ""
        lines = refused.stderr.splitlines()
        assert len(lines) == 1002
        assert lines[0] == "line 10005: addComment: String should have at least 1 character"
        assert lines[999].startswith("line 15000: addComment")
        assert lines[1000:] == [
            "and 1000 more problem(s)",
            f"refused: 2000 problem(s); nothing was {nothing_was}",
        ]
        assert real_redis.dbsize() == 0
