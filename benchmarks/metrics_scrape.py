"""How long `GET /metrics` takes on a full Redis: `python -m benchmarks.metrics_scrape`.

Starts a throwaway redis-server, fills it through pipelines with 100,000 jobs (60,000 of them
queued, with their queue messages), 10,000 dead letters, an idempotency key per job (so the
keyspace is large: a scan of it would show), open breakers, limiters, sites and worker
heartbeats; starts a real `ctq serve` and times N scrapes over one kept-alive connection, and
the dashboard's live part. Prints p50/p99 (target: /metrics within 50 ms) and the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import requests

from tests.api_process import start_api_process
from tests.helpers import RedisServer, ctq_env, free_port, stop_process_group
from worker import deadletter, jobstore, keys, metrics
from worker.breaker import Breaker
from worker.jobstore import State
from worker.outcome import LastOutcome

KEY = "bench-metrics-key"
BATCH = 5_000
QUEUED_SHARE = 0.6


def message(job_id: str, queue: str) -> str:
    """A queue message shaped (and sized) like kombu's for a ctq task."""
    headers = {"lang": "py", "task": f"ctq.{queue}", "id": job_id, "root_id": job_id}
    properties = {"correlation_id": job_id, "delivery_tag": job_id, "body_encoding": "base64"}
    return json.dumps(
        {"body": "W1siIl0sIHt9XQ==" * 40, "headers": headers, "properties": properties}
    )


def fill(client: redis.Redis, jobs: int, dead: int) -> None:
    now = time.time()
    states = {State.QUEUED: int(jobs * QUEUED_SHARE), State.DEAD: dead}
    states[State.DONE] = jobs - sum(states.values())
    payload = {"routeKey": "bench", "phone": "79991234567"}
    pipe = client.pipeline(transaction=False)
    number = 0
    for state, count in states.items():
        for _ in range(count):
            job_id = f"{number:032x}"
            lane = keys.REALTIME if number % 2 else keys.BULK
            fields = jobstore.new_fields("callback", lane, payload, now - number / 100)
            pipe.hset(keys.job(job_id), mapping={**fields, "state": state})
            pipe.zadd(keys.jobs_in(state), {job_id: now - number / 100})
            pipe.set(keys.idempotency(f"bench-{number}"), job_id)
            if state == State.QUEUED:
                pipe.lpush(lane, message(job_id, lane))
            if state == State.DEAD:
                deadletter.add(
                    pipe, {"id": job_id, "kind": "callback", "payload": payload}, now=now
                )
            number += 1
            if len(pipe) >= BATCH:
                pipe.execute()
        pipe.hset(keys.STATS, state, count)
    pipe.execute()
    fill_the_rest(client)


def fill_the_rest(client: redis.Redis) -> None:
    """Limiters, sites, open breakers, heartbeats and a day of counted requests."""
    limiters = [f"{keys.PREFIX}:limiter:default:api.calltouch.ru", f"{keys.PREFIX}:limiter:x:y"]
    client.sadd(keys.LIMITERS, *limiters)
    client.sadd(keys.SITES, "1001", "1002", "1003")
    for site in ("1001", "1002"):
        why = LastOutcome("pause", "http_403", 403, None, "Invalid credentials")
        Breaker(client, site, keys.REALTIME).open("j", "account-level", why, time.time(), 300)
    host = socket.gethostname()
    for pid in range(8):
        seen = {"host": host, "pid": pid, "jobs": [], "seen": time.time()}
        client.hset(keys.WORKERS, f"{host}:{pid}", json.dumps(seen))
    seconds = int(client.time()[0])
    for n in range(2_000):
        slot = (seconds - n % 900) * 1_000_000
        sent = metrics.Sent("calltouch", "callback", "done", "realtime", limiters[0], slot, 0.1)
        metrics.record_sent(client, sent)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def timed(session: requests.Session, url: str, times: int) -> dict[str, float]:
    session.get(url, timeout=30).raise_for_status()  # warm: connections, scripts
    took = []
    for _ in range(times):
        started = time.perf_counter()
        answer = session.get(url, timeout=30)
        took.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return {
        "p50_ms": round(statistics.median(took), 1),
        "p99_ms": round(percentile(took, 0.99), 1),
        "max_ms": round(max(took), 1),
    }


def measure(jobs: int, dead: int, scrapes: int, directory: Path) -> dict[str, Any]:
    server = RedisServer(free_port(), directory)
    server.start()
    api = None
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        started = time.perf_counter()
        fill(client, jobs, dead)
        filled_s = time.perf_counter() - started
        env = ctq_env(REDIS_URL=server.url, CTQ_DATA_DIR=str(directory), CTQ_API_KEYS=KEY)
        api = start_api_process(env, directory / "api.log")
        api.wait_ready()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {KEY}"
        return {
            "jobs": jobs,
            "dead_letters": dead,
            "redis_keys": client.dbsize(),
            "fill_s": round(filled_s, 1),
            "scrapes": scrapes,
            "metrics": timed(session, f"{api.url}/metrics", scrapes),
            "dashboard_live": timed(session, f"{api.url}/dashboard/live", max(10, scrapes // 4)),
            "cpus": os.cpu_count(),
        }
    finally:
        if api is not None:
            stop_process_group(api.process)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--dead", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        result = measure(args.jobs, args.dead, args.scrapes, Path(directory))
    shown = result["metrics"]
    print(
        f"/metrics with {result['jobs']:,} jobs, {result['dead_letters']:,} dead letters "
        f"({result['redis_keys']:,} keys): p50 {shown['p50_ms']} ms, p99 {shown['p99_ms']} ms "
        f"over {result['scrapes']} scrapes (target: 50 ms)"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
