"""The cost of one lost-message sweep over a backlog: `python -m benchmarks.lost_sweep`.

Starts a throwaway redis-server, enqueues N callbacks in one input (one commit, so they
share one time and a page of candidates lies anywhere in the queue), and times ``find_lost``
(what one process in the cluster runs every CTQ_LOST_MESSAGE_AFTER / 3 s while jobs are
older than CTQ_LOST_MESSAGE_AFTER; each sweep looks at the 100 oldest and the next 1,000):
every sweep of one round through the jobs with every message queued, then, from the start
of a round, the sweeps until the job last in it, its message dropped (a lost reply), is
found lost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from config import Settings
from tasks.producer import Producer
from tests.helpers import RedisServer, free_port
from worker import keys
from worker.lost_messages import find_lost

PAGE = 1000  # find_lost's default


def drop_message_of(client: redis.Redis, job_id: str) -> None:
    """Remove job ``job_id``'s message from its queue, as a reply lost after BRPOP does."""
    queued: list[str] = client.lrange(keys.REALTIME, 0, -1)  # type: ignore[assignment]
    for raw in queued:
        if json.loads(raw)["headers"]["id"] == job_id:
            client.lrem(keys.REALTIME, 1, raw)
            return


def sweep(client: redis.Redis) -> tuple[float, int]:
    """One ``find_lost`` over every job: its milliseconds, and how many jobs it found lost."""
    started = time.perf_counter()
    lost = find_lost(client, time.time() + 1, limit=PAGE)
    return (time.perf_counter() - started) * 1000, len(lost)


def measure(jobs: int, directory: Path) -> dict[str, Any]:
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = Settings(_env_file=None, REDIS_URL=server.url, CTQ_DATA_DIR=str(directory))
        with Producer(settings) as producer:
            lines = (json.dumps({"routeKey": "rk", "phone": f"7999{n:07d}"}) for n in range(jobs))
            producer.from_json_lines("callback", lines)
        round_ms = [sweep(client)[0] for _ in range(jobs // PAGE + 1)]
        # The worst case: the lost job is the last of a round that starts from the oldest.
        client.delete(keys.LOST_SWEEP_CURSOR)
        drop_message_of(client, str(client.zrange(keys.jobs_in("queued"), -1, -1)[0]))
        until_found: list[float] = []
        while len(until_found) <= jobs // PAGE:
            ms, lost = sweep(client)
            until_found.append(ms)
            if lost:
                break
        return {
            "jobs": jobs,
            "message_bytes": len(str(client.lindex(keys.REALTIME, 0))),
            "sweeps_timed": len(round_ms),
            "sweep_median_ms": round(statistics.median(round_ms), 2),
            "sweep_slowest_ms": round(max(round_ms), 2),
            "sweeps_until_the_last_job_was_found_lost": len(until_found) if lost else None,
            "slowest_of_those_ms": round(max(until_found), 2),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(measure(args.jobs, Path(directory)), indent=2))


if __name__ == "__main__":
    main()
