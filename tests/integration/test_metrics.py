"""/metrics after known traffic through real workers: every number equals what the sandbox
received (requests by provider, kind and outcome, 429s, points, the permits chart) and what
`GET /v1/status` says (jobs, queues, dead letters, breakers, margins, workers)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from sandbox.server import ROUTES
from tests.api_process import ApiProcess
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, wait_for
from worker import jobstore, metrics

pytestmark = pytest.mark.integration

KEY = "metrics-test-key-41d7"
AUTH = {"Authorization": f"Bearer {KEY}"}
OUTCOMES = {200: "done", 201: "done", 400: "dead", 403: "pause", 429: "retry"}
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(api: ApiProcess) -> Samples:
    answer = requests.get(f"{api.url}/metrics", headers=AUTH, timeout=10)
    answer.raise_for_status()
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def one(samples: Samples, name: str, **labels: str) -> float:
    matching = [v for found, v in samples.get(name, []) if labels.items() <= found.items()]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {found[label]: value for found, value in samples.get(name, [])}


def expected_requests(received: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """What the workers should have counted, from what the sandbox received: a Pozvonim token
    request that got no token is counted as the request of the job that needed it."""
    expected: Counter[tuple[str, str, str]] = Counter()
    for r in received:
        outcome = OUTCOMES[r["status"]]
        if r["path"].startswith("/v2u"):
            token = r["path"].endswith("/auth/token") and outcome == "done"
            expected["pozvonim", "token" if token else "pozvonim-call", outcome] += 1
        else:
            expected["calltouch", ROUTES[r["path"]], outcome] += 1
    return expected


def post(api: ApiProcess, kind: str, body: Any) -> list[str]:
    answer = requests.post(f"{api.url}/v1/jobs/{kind}", headers=AUTH, json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return list(answer.json()["job_ids"])


def status(api: ApiProcess) -> dict[str, Any]:
    return dict(requests.get(f"{api.url}/v1/status", headers=AUTH, timeout=10).json())


def test_every_metric_equals_what_the_sandbox_received(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: Callable[..., WorkerProcess],
    start_api: Callable[..., ApiProcess],
    tmp_path: Path,
) -> None:
    # The sandbox executes 3 requests a second, the workers send 5: some answers are 429.
    sandbox = start_sandbox(rate=3)
    env = env_for(
        redis_url,
        sandbox,
        tmp_path / "data",
        CTQ_API_KEYS=KEY,
        POZVONIM_API_URL=f"{sandbox.url}/v2u",
        POZVONIM_UID="1001",
        POZVONIM_API_KEY="sandbox-key",
    )
    start_worker(env, "-c", "4")
    api = start_api(env)
    callbacks = [{"routeKey": "rk", "phone": f"7999055{n:04d}"} for n in range(10)]
    dead = [{"routeKey": "rk", "phone": "79990010003"}, {"routeKey": "rk", "phone": "79990010013"}]
    leads = [
        {"matching": [{"type": "call", "callParams": {"callId": n}}], "addComment": "paid"}
        for n in range(1, 151)
    ]
    calls = [{"provider": "pozvonim", "site_id": 42, "phone": f"+7999071{n:04d}"} for n in range(3)]
    jobs = [*post(api, "callback", callbacks + dead + calls), *post(api, "comment", leads)]
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def finished() -> int:
        counts = jobstore.counts(client)
        return counts["done"] + counts["dead"]

    wait_for(lambda: finished() == len(jobs), timeout=120, interval=0.5)
    # Last, a bad token's answer opens the breaker of site 777's realtime lane.
    post(api, "pool-update", {"phoneNumber": "79990000403", "displayOptions": {"source": "x"}})
    wait_for(lambda: status(api)["paused"], timeout=60)

    received = sandbox.received()
    samples = scrape(api)
    shown = status(api)
    sent = Counter(
        {
            (labels["provider"], labels["kind"], labels["outcome"]): int(value)
            for labels, value in samples["ctq_api_requests_total"]
        }
    )
    assert sent == expected_requests(received)
    calltouch = [r for r in received if not r["path"].startswith("/v2u")]
    assert sum(r["status"] == 429 for r in calltouch) >= 1  # the 429s this test is about
    limiter = next(name for name in shown["limiters"] if not name.endswith("/v2u"))
    seen_429 = by_label(samples, "ctq_http_429_total", "limiter")
    assert seen_429[limiter] == sum(r["status"] == 429 for r in calltouch)
    assert sum(seen_429.values()) == sum(r["status"] == 429 for r in received)
    for name, value in by_label(samples, "ctq_limiter_margin_seconds", "limiter").items():
        assert value == pytest.approx(shown["limiters"][name]["margin_ms"] / 1000)

    # Every request but a token request took a permit: the histogram and the permits chart.
    tokens = sent["pozvonim", "token", "done"]
    waits = by_label(samples, "ctq_permit_wait_seconds_count", "lane")
    assert sum(waits.values()) == len(received) - tokens
    seconds, micros = client.time()
    per_second = metrics.permits_per_second(
        client, f"ctq:limiter:{limiter}", seconds * 1_000_000 + micros
    )
    assert sum(per_second) == len(calltouch)

    done_calltouch = [r for r in calltouch if r["status"] == 200]
    assert one(samples, "ctq_points_used", site="777") == len(done_calltouch)  # 1 point each
    assert shown["points_today"]["777"]["used"] == len(done_calltouch)
    assert "ctq_points_budget" not in samples  # no CTQ_DAILY_POINTS

    assert by_label(samples, "ctq_jobs", "state") == shown["jobs"]
    assert shown["jobs"]["done"] == 10 + 3 + 2 and shown["jobs"]["dead"] == 2
    assert one(samples, "ctq_dead_letters") == shown["dead_letters"] == 2
    assert by_label(samples, "ctq_queue_depth", "lane") == shown["queues"]
    assert one(samples, "ctq_breaker_open", site="777", lane="realtime") == 1
    assert one(samples, "ctq_breaker_open", site="777", lane="bulk") == 0
    assert one(samples, "ctq_workers_alive") == len(shown["workers"]) >= 1
    assert KEY not in json.dumps(samples)
