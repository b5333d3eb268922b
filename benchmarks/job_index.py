"""The cost of the per-state job index behind `ctq jobs`: `python -m benchmarks.job_index`.

Starts a throwaway redis-server, enqueues N pool updates in one input (one commit), and
reports how long the commit blocked Redis (``SLOWLOG``), the index's memory, how long a
state change takes, and how long `ctq jobs` takes to list: the newest 50 of every state,
and a kind no job has (the worst case: every index entry is read to find none).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from config import Settings
from tasks.producer import Producer
from tests.helpers import RedisServer, free_port
from worker import jobstore, keys
from worker.joblist import list_jobs
from worker.jobstore import State


def timed(action: Any, repeat: int = 5) -> float:
    """The best of ``repeat`` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 2)


def measure(jobs: int, directory: Path) -> dict[str, Any]:
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        client.config_set("slowlog-log-slower-than", 0)
        settings = Settings(_env_file=None, REDIS_URL=server.url, CTQ_DATA_DIR=str(directory))
        producer = Producer(settings)
        lines = (
            json.dumps({"phoneNumber": f"7495{n:07d}", "displayOptions": {"source": "x"}})
            for n in range(jobs)
        )
        client.slowlog_reset()
        job_ids = producer.from_json_lines("pool-update", lines)
        commit_us = max(int(e["duration"]) for e in client.slowlog_get(1024))
        index_bytes = int(client.memory_usage(keys.jobs_in(State.QUEUED), samples=0) or 0)
        used = int(client.info("memory")["used_memory"])
        producer.close()
        one = job_ids[0]
        return {
            "jobs": jobs,
            "commit_blocks_redis_ms": round(commit_us / 1000, 1),
            "index_bytes": index_bytes,
            "index_bytes_per_job": round(index_bytes / jobs, 1),
            "index_share_of_used_memory": round(index_bytes / used, 3),
            "transition_ms": timed(
                lambda: jobstore.transition(client, one, State.RUNNING), repeat=50
            ),
            "list_newest_50_ms": timed(lambda: list_jobs(client, limit=50)),
            "list_queued_of_absent_kind_ms": timed(
                lambda: list_jobs(client, [State.QUEUED], kind="comment", limit=50), repeat=2
            ),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(measure(args.jobs, Path(directory)), indent=2))


if __name__ == "__main__":
    main()
