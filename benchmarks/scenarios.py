"""The measured scenarios a) to c), each against the sandbox at 5 requests/s per IP."""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any

import requests

from benchmarks.callback_floor import floor
from benchmarks.stack import Stack
from tasks.models import CallbackJob
from tasks.registry import KINDS
from tests.helpers import CTQ_WORKER, wait_for
from worker import jobstore

# Benchmark a)'s comparison: a worker on Celery's own rate_limit (benchmarks/native_worker.py).
NATIVE_WORKER = ("benchmarks.native_worker",)

RATE = 5.0
CALLBACK_PATH = KINDS["callback"].path
COMMENT_PATH = KINDS["comment"].path
# Both limiter modes get the same retry settings, generous enough that nothing dead-letters.
RETRY_ENV = {"CTQ_MAX_ATTEMPTS": "1000", "CTQ_BACKOFF_MAX": "5"}


def callbacks(count: int, first_phone: int = 79_990_100_000) -> list[CallbackJob]:
    return [CallbackJob(routeKey="bench", phone=str(first_phone + n)) for n in range(count)]


def wait_finished(stack: Stack, jobs: int, timeout: float) -> None:
    def finished() -> bool:
        counts = jobstore.counts(stack.redis)
        return counts["done"] + counts["dead"] >= jobs

    wait_for(finished, timeout=timeout, interval=0.25)


def rate_limited_callbacks(stack: Stack, jobs: int, limiter: str) -> dict[str, Any]:
    """a) ``jobs`` callbacks through ``limiter`` (shared or celery-native)."""
    stack.reset()
    command = NATIVE_WORKER if limiter == "celery-native" else CTQ_WORKER
    with stack.running_workers(RETRY_ENV, command=command):
        producer = stack.producer()
        started = time.time()
        producer.enqueue(KINDS["callback"], callbacks(jobs))
        wait_finished(stack, jobs, timeout=jobs / RATE * 6 + 60)
    received = [r for r in stack.received() if r["path"] == CALLBACK_PATH]
    accepted = sorted(r["time"] for r in received if r["status"] == 200)
    seconds = accepted[-1] - started
    achieved = (len(accepted) - 1) / (accepted[-1] - accepted[0])
    return {
        "limiter": limiter,
        "jobs": jobs,
        "seconds": round(seconds, 2),
        "requests_per_s": round(achieved, 3),
        "http_429": sum(r["status"] == 429 for r in received),
        "utilization": round(achieved / RATE, 3),
        "dead": jobstore.counts(stack.redis)["dead"],
    }


def callbacks_under_latency(stack: Stack, jobs: int, jitter: float) -> dict[str, Any]:
    """e) ``jobs`` callbacks while each request reaches the sandbox 0..``jitter`` s after it
    leaves; the best utilization without 429s is W / (W + J)."""
    requests.post(
        f"{stack.sandbox_url}/_sandbox/latency", json={"min": 0, "max": jitter}, timeout=10
    )
    try:
        result = rate_limited_callbacks(stack, jobs, "shared")
    finally:
        requests.post(
            f"{stack.sandbox_url}/_sandbox/latency", json={"min": 0, "max": 0}, timeout=10
        )
    sent = result["http_429"] + jobs
    return {
        **result,
        "jitter_ms": round(jitter * 1000),
        "share_429": round(result["http_429"] / sent, 4),
        "bound": round(1 / (1 + jitter), 3),
    }


def bulk_with_callbacks(stack: Stack, leads: int, callback_count: int) -> dict[str, Any]:
    """b) ``leads`` lead comments (100 per request); c) callbacks enqueued meanwhile."""
    stack.reset()
    requests_ = leads // 100
    lead = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": "bench"}
    with stack.running_workers(RETRY_ENV):
        producer = stack.producer()
        started = time.time()
        producer.comments([lead] * leads)
        sprinkler = threading.Thread(
            target=_sprinkle, args=(stack, callback_count, requests_ / RATE * 0.8), daemon=True
        )
        sprinkler.start()
        sprinkler.join()
        wait_finished(stack, requests_ + callback_count, timeout=requests_ / RATE * 4 + 60)
    received = stack.received()
    comments = sorted(
        r["time"] for r in received if r["path"] == COMMENT_PATH and r["status"] == 200
    )
    result: dict[str, Any] = {
        "leads": leads,
        "requests": requests_,
        "callbacks": callback_count,
        "seconds": round(comments[-1] - started, 2),
        "ideal_seconds": round((requests_ + callback_count) / RATE, 1),
        "http_429": sum(r["status"] == 429 for r in received),
    }
    if callback_count:
        result.update(_latencies(stack, received))
    return result


def _sprinkle(stack: Stack, count: int, within: float) -> None:
    producer = stack.producer()
    moments = sorted(random.uniform(0, within) for _ in range(count))
    begin = time.monotonic()
    for n, moment in enumerate(moments):
        time.sleep(max(0.0, moment - (time.monotonic() - begin)))
        producer.callback(callbacks(1, first_phone=79_990_200_000 + n)[0])


def _latencies(stack: Stack, received: list[dict[str, Any]]) -> dict[str, float]:
    """Enqueue (job record) to arrival at the sandbox, per callback."""
    sent = {
        r["body"]["phone"]: r["time"]
        for r in received
        if r["path"] == CALLBACK_PATH and r["status"] == 200
    }
    client = stack.redis
    delays, enqueued = [], []
    for key in client.scan_iter("ctq:job:*"):
        job = jobstore.load(client, key.removeprefix("ctq:job:"))
        if job and job.kind == "callback":
            delays.append(sent[job.payload["phone"]] - job.created_at)
            enqueued.append(job.created_at)
    delays.sort()
    return {
        "callback_p50_s": round(statistics.median(delays), 3),
        "callback_p99_s": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 3),
        "callback_max_s": round(delays[-1], 3),
        # The longest wait these arrival moments alone force, batch or not (callback_floor).
        "callback_floor_s": round(floor(enqueued), 3),
    }
