"""The cost of one lost-message sweep over a backlog: `python -m benchmarks.lost_sweep`.

Starts a throwaway redis-server, enqueues N callbacks in one input (one commit, so they
share one time and the sweep's oldest candidates lie anywhere in the queue), and times
``find_lost`` (what one process in the cluster runs every CTQ_LOST_MESSAGE_AFTER / 3 s while
jobs are older than CTQ_LOST_MESSAGE_AFTER): with every message queued, and with the next
message of one of the oldest jobs dropped (a lost reply: that job is found lost).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks.job_index import timed
from config import Settings
from tasks.producer import Producer
from tests.helpers import RedisServer, free_port
from worker import keys
from worker.lost_messages import find_lost


def drop_message_of(client: redis.Redis, job_id: str) -> None:
    """Remove job ``job_id``'s message from its queue, as a reply lost after BRPOP does. The
    job is the first of the oldest by id, so the sweep has it among its candidates."""
    queued: list[str] = client.lrange(keys.REALTIME, 0, -1)  # type: ignore[assignment]
    for raw in queued:
        if json.loads(raw)["headers"]["id"] == job_id:
            client.lrem(keys.REALTIME, 1, raw)
            return


def measure(jobs: int, directory: Path) -> dict[str, Any]:
    server = RedisServer(free_port(), directory)
    server.start()
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = Settings(_env_file=None, REDIS_URL=server.url, CTQ_DATA_DIR=str(directory))
        with Producer(settings) as producer:
            lines = (json.dumps({"routeKey": "rk", "phone": f"7999{n:07d}"}) for n in range(jobs))
            producer.from_json_lines("callback", lines)
        queued_ms = timed(lambda: find_lost(client, time.time() + 1))
        drop_message_of(client, str(client.zrange(keys.jobs_in("queued"), 0, 0)[0]))
        lost = find_lost(client, time.time() + 1)
        return {
            "jobs": jobs,
            "message_bytes": len(str(client.lindex(keys.REALTIME, 0))),
            "sweep_all_queued_ms": queued_ms,
            "sweep_one_lost_ms": timed(lambda: find_lost(client, time.time() + 1)),
            "found_lost": len(lost),
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
