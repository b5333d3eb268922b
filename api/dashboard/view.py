"""What each part of the dashboard shows, read from Redis: the same ``Snapshot`` as
``/metrics`` plus the history the charts draw and the newest dead letters."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from api.dashboard.charts import Chart, burn_down, line_chart, per_second_rate
from api.snapshot import Snapshot, limiter_key, take
from config import Settings
from scheduler import campaigns
from worker import deadletter, metrics
from worker.ledger import Ledger
from worker.status import LimiterStatus, PointsToday, account_of_site

DEAD_LETTERS_SHOWN = 20
AVERAGED_OVER = 10  # seconds per point of the permits chart


@dataclass(frozen=True)
class LimiterView:
    name: str
    status: LimiterStatus
    chart: Chart
    peak_second: int  # the most permits used in one second of the last 15 minutes
    limit_per_s: float
    recent_per_s: float  # the last 10 seconds' average


@dataclass(frozen=True)
class SiteView:
    site: str
    today: PointsToday
    chart: Chart


def live(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Everything but campaigns: refreshed every 2 s."""
    snap = take(client, settings)
    seconds, micros = client.time()
    now_us = seconds * 1_000_000 + micros
    return {
        "snap": snap,
        "status": snap.overview,
        "limiters": [_limiter(client, name, s, now_us) for name, s in _limiters(snap)],
        "sites": [
            _site(client, settings, site, today, snap.taken_at) for site, today in _sites(snap)
        ],
        "dead_letters": deadletter.list_records(client, DEAD_LETTERS_SHOWN),
    }


def campaign_list(client: redis.Redis) -> dict[str, Any]:
    """Every campaign's progress and ETA: refreshed every 10 s (each reads its jobs' states)."""
    now = campaigns.utcnow()
    return {"campaigns": [campaigns.status(client, name, now) for name in campaigns.names(client)]}


def _limiters(snap: Snapshot) -> list[tuple[str, LimiterStatus]]:
    return sorted(snap.overview.limiters.items())


def _sites(snap: Snapshot) -> list[tuple[str, PointsToday]]:
    return sorted(snap.overview.points_today.items())


def _limiter(client: redis.Redis, name: str, status: LimiterStatus, now_us: int) -> LimiterView:
    per_second = metrics.permits_per_second(client, limiter_key(name), now_us)
    limit = status.limit / status.window_s
    rates = per_second_rate(per_second, AVERAGED_OVER)
    chart = line_chart(rates, len(rates), (limit, limit))
    peak = max(per_second, default=0)
    return LimiterView(name, status, chart, peak, limit, rates[-1] if rates else 0.0)


def _site(
    client: redis.Redis, settings: Settings, site: str, today: PointsToday, now: float
) -> SiteView:
    day_key = Ledger(client, settings, time.time, account_of_site(settings, site)).key(now)
    spent = metrics.points_spent_at(client, day_key)
    chart = burn_down(spent, today.budget, now, settings.tz, metrics.SPENT_BUCKET_SECONDS)
    return SiteView(site, today, chart)
