"""``GET /metrics``: Prometheus' text format, read from Redis at scrape time, so every API
process answers for the whole cluster (no per-process counters, no global registry)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from api import backend
from api.snapshot import Snapshot, take
from worker import keys


class ClusterCollector(Collector):
    """Every metric of design.md's list, from one ``Snapshot`` per scrape."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        snap = self.read()
        yield _requests(snap)
        yield from _limiters(snap)
        yield from _queues(snap)
        yield from _jobs(snap)
        yield from _points(snap)
        yield _breakers(snap)
        yield _permit_waits(snap)
        yield from _accounts(snap)
        workers = GaugeMetricFamily(
            "ctq_workers_alive", "worker processes that sent a heartbeat in the last 15 s"
        )
        workers.add_metric([], len(snap.overview.workers))
        yield workers


def _requests(snap: Snapshot) -> Metric:
    sent = CounterMetricFamily(
        "ctq_api_requests",
        "HTTP requests sent to a provider's API, by the outcome their answer was classified as",
        labels=["provider", "kind", "outcome"],
    )
    for labels, number in sorted(snap.requests_sent.items()):
        sent.add_metric(list(labels), number)
    return sent


def _limiters(snap: Snapshot) -> Iterator[Metric]:
    seen_429 = CounterMetricFamily(
        "ctq_http_429", "429 answers (each paused the limiter for every worker)", labels=["limiter"]
    )
    margin = GaugeMetricFamily(
        "ctq_limiter_margin_seconds",
        "the margin the limiter adds to each window (learned from round trips and 429s)",
        labels=["limiter"],
    )
    for name, limiter in snap.overview.limiters.items():
        seen_429.add_metric([name], limiter.http_429)
        margin.add_metric([name], limiter.margin_ms / 1000)
    yield seen_429
    yield margin


def _queues(snap: Snapshot) -> Iterator[Metric]:
    depth = GaugeMetricFamily("ctq_queue_depth", "messages waiting on a queue", labels=["lane"])
    for lane, number in snap.overview.queues.items():
        depth.add_metric([lane], number)
    oldest = GaugeMetricFamily(
        "ctq_queue_oldest_seconds",
        "how long the job next in line has been queued (absent for an empty queue)",
        labels=["lane"],
    )
    for lane in keys.LANES:
        age = snap.oldest_age(lane)
        if age is not None:
            oldest.add_metric([lane], age)
    yield depth
    yield oldest


def _jobs(snap: Snapshot) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "ctq_jobs", "jobs in each state (done and dead: every job ever finished)", labels=["state"]
    )
    for state, number in snap.overview.jobs.items():
        jobs.add_metric([state], number)
    yield jobs
    dead = GaugeMetricFamily("ctq_dead_letters", "dead letters kept (ctq dlq list)")
    dead.add_metric([], snap.overview.dead_letters)
    yield dead


def _points(snap: Snapshot) -> Iterator[Metric]:
    used = GaugeMetricFamily("ctq_points_used", "points spent today", labels=["site"])
    budget = GaugeMetricFamily(
        "ctq_points_budget",
        "the daily budget (CTQ_DAILY_POINTS; absent when unset)",
        labels=["site"],
    )
    for site, points in snap.overview.points_today.items():
        used.add_metric([site], points.used)
        if points.budget is not None:
            budget.add_metric([site], points.budget)
    yield used
    yield budget


def _breakers(snap: Snapshot) -> Metric:
    """1 for an open breaker; 0 for every other lane of the sites the workers send for."""
    opened = {(p.site, p.lane) for p in snap.overview.paused}
    known = {(site, lane) for site in snap.overview.points_today for lane in keys.LANES}
    breaker = GaugeMetricFamily(
        "ctq_breaker_open",
        "1 while a site's lane is paused by its breaker",
        labels=["site", "lane"],
    )
    for site, lane in sorted(known | opened):
        breaker.add_metric([site, lane], 1 if (site, lane) in opened else 0)
    return breaker


def _permit_waits(snap: Snapshot) -> Metric:
    waits = HistogramMetricFamily(
        "ctq_permit_wait_seconds",
        "time from asking the shared limiter for a permit to holding it, per request sent",
        labels=["lane"],
    )
    for lane, histogram in snap.permit_waits.items():
        buckets = [("+Inf" if b == float("inf") else f"{b:g}", n) for b, n in histogram.buckets]
        waits.add_metric([lane], buckets, histogram.sum)
    return waits


def _accounts(snap: Snapshot) -> Iterator[Metric]:
    """Per account (default, and those of CTQ_ACCOUNTS_FILE): its queues and its jobs."""
    depth = GaugeMetricFamily(
        "ctq_account_queue_depth", "an account's messages waiting", labels=["account", "lane"]
    )
    jobs = GaugeMetricFamily(
        "ctq_account_jobs", "an account's jobs in each state", labels=["account", "state"]
    )
    for name, account in snap.overview.accounts.items():
        for lane, number in account.queues.items():
            depth.add_metric([name, lane], number)
        for state, number in account.jobs.items():
            jobs.add_metric([name, state], number)
    yield depth
    yield jobs


def router(guard: list[object]) -> APIRouter:
    """``GET /metrics`` behind ``guard`` (the API's key check, unless served without keys)."""
    routes = APIRouter(dependencies=guard)  # type: ignore[arg-type]

    @routes.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        found = backend.backend(request)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterCollector(lambda: take(found.redis(), found.settings)))
        # Prometheus' text format, or OpenMetrics when the scraper asks for it.
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)

    return routes
