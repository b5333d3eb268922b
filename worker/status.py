"""What ``ctq status`` reports (and ``GET /v1/status`` answers), as typed records.

Each record lists every field it shows and refuses others (``extra="forbid"``), so the CLI's
text, its ``--json`` and the HTTP API's schema cannot drift apart.
"""

from __future__ import annotations

import time
from typing import Any

import limits
import redis
from pydantic import BaseModel, ConfigDict

from config import Settings
from config.accounts import Account
from worker import deadletter, jobstore, keys
from worker.breaker import open_breakers
from worker.heartbeat import alive
from worker.ledger import Ledger
from worker.limiter import Limiter, limiter_key
from worker.redis_health import memory

# A worker process beats every CTQ_LEASE_SECONDS / 3; silent this long, it is gone.
WORKER_SILENT_AFTER = 15.0


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimiterStatus(Record):
    """One limiter key: its window now, who waits, 429s, the learned margin and pace."""

    limit: int
    window_s: float
    permits_in_window: int
    booked_ahead: int
    waiting_realtime: int
    waiting_bulk: int
    http_429: int
    paused_for_s: float
    margin_ms: float
    spread_ms: float
    effective_per_s: float


class PointsToday(Record):
    """One site's points today; ``left`` is None without a budget."""

    budget: int | None
    used: int
    reserved: int
    left: int | None
    exhausted: bool


class PausedLane(Record):
    """An open circuit breaker: why, since when, its next probe, how many jobs it holds."""

    site: str
    lane: str
    reason: str
    code: int | None
    http_status: int | None
    since: float
    probe_at: float
    held: int


class WorkerSeen(Record):
    host: str
    pid: int
    jobs: list[str]
    seen: float


class RedisMemory(Record):
    used_bytes: int
    max_bytes: int
    policy: str
    full: bool


class AccountStatus(Record):
    """One account: its site and share, its messages waiting per lane, its jobs in each
    state, its points today, its paused lanes, its staged leads."""

    site: str
    weight: int
    queues: dict[str, int]
    jobs: dict[str, int]
    points_today: PointsToday
    paused_lanes: list[str]
    staged_leads: int


class Overview(Record):
    """Queue depths, jobs in each state, dead letters, limiters, points, pauses, processes;
    the same per account (``queues`` and ``staged_leads`` count every account's)."""

    queues: dict[str, int]
    in_flight: int
    jobs: dict[str, int]
    dead_letters: int
    limiters: dict[str, LimiterStatus]
    points_today: dict[str, PointsToday]
    paused: list[PausedLane]
    staged_leads: int
    beat_last_tick: float | None
    workers: list[WorkerSeen]
    redis: RedisMemory
    accounts: dict[str, AccountStatus]


class JobDetail(Record):
    """One job; ``leads`` and ``lead_results`` for comments only (``shown()`` leaves them out
    for other kinds)."""

    id: str
    kind: str
    lane: str
    state: str
    attempts: int
    created_at: float | None
    updated_at: float | None
    last: dict[str, Any] | None
    leads: int | None = None
    lead_results: list[dict[str, Any]] | None = None

    def shown(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


def overview(client: redis.Redis, settings: Settings) -> Overview:
    """Queue depths, jobs in each state, dead letters, every limiter key, points today."""
    paused = open_breakers(client)
    points = points_today(client, settings)
    accounts = account_statuses(client, settings, paused, points)
    lanes = {lane: sum(shown.queues[lane] for shown in accounts.values()) for lane in keys.LANES}
    return Overview.model_validate(
        {
            "queues": {**lanes, keys.MAINTENANCE: int(client.llen(keys.MAINTENANCE))},
            "in_flight": int(client.hlen(keys.KOMBU_UNACKED)),
            "jobs": jobstore.counts(client),
            "dead_letters": deadletter.count(client),
            "limiters": limiters(client, settings),
            "points_today": points,
            "paused": paused,
            "staged_leads": sum(shown.staged_leads for shown in accounts.values()),
            "beat_last_tick": float(client.get(keys.BEAT_TICK) or 0) or None,
            "workers": alive(client, within=WORKER_SILENT_AFTER),
            "redis": memory(client),
            "accounts": accounts,
        }
    )


def account_statuses(
    client: redis.Redis,
    settings: Settings,
    paused: list[dict[str, Any]],
    points: dict[str, dict[str, Any]],
) -> dict[str, AccountStatus]:
    """Every account's queues, jobs and staged leads (one round trip for all of them), its
    points (``points``, read once per site) and its paused lanes."""
    accounts = list(settings.accounts.values())
    with client.pipeline(transaction=False) as pipe:
        for account in accounts:
            for lane in keys.LANES:
                pipe.llen(keys.queue(lane, account.name))
            pipe.llen(keys.staged_comments(account.name))
            pipe.hgetall(keys.account_stats(account.name))
        read = iter(pipe.execute())
    shown = {}
    for account in accounts:
        depths = [next(read) for _ in keys.LANES]
        staged, stats = next(read), next(read)
        today = points.get(account.site) or Ledger(client, settings, time.time, account).today()
        shown[account.name] = AccountStatus(
            site=account.site,
            weight=account.weight,
            queues=dict(zip(keys.LANES, depths, strict=True)),
            jobs=jobstore.state_counts(stats),
            points_today=PointsToday(**today),
            paused_lanes=[lane["lane"] for lane in paused if lane["site"] == account.site],
            staged_leads=staged,
        )
    return shown


def points_today(client: redis.Redis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per site a worker has sent for: points used, reserved and left today."""
    sites: set[str] = client.smembers(keys.SITES)  # type: ignore[assignment]
    return {
        site: Ledger(client, settings, time.time, account_of_site(settings, site)).today()
        for site in sorted(sites)
    }


def account_of_site(settings: Settings, site: str) -> Account:
    """The account whose site ``site`` is; for a site sent for before by an account no longer
    configured, a stand-in with CTQ_DAILY_POINTS as its budget."""
    for account in settings.accounts.values():
        if account.site == site:
            return account
    return Account(f"site {site}", site, None, settings.daily_points)


def limiters(client: redis.Redis, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per limiter key: permits in the current window, booked ahead, waiters, 429s, pause."""
    margin = settings.limiter_margin_ms / 1000
    pozvonim = limiter_key(settings.egress_ip, settings.pozvonim_api_url)
    names: set[str] = client.smembers(keys.LIMITERS)  # type: ignore[assignment]
    shown = {}
    for name in sorted(names):
        rate = limits.parse(settings.pozvonim_rate_limit) if name == pozvonim else settings.rate
        snapshot = Limiter(client, name, rate, margin=margin).snapshot()
        shown[name.removeprefix(f"{keys.PREFIX}:limiter:")] = snapshot
    return shown


def job_detail(client: redis.Redis, job_id: str) -> JobDetail | None:
    """One job: state, attempts, last outcome, and per-lead results for comments."""
    job = jobstore.load(client, job_id)
    if job is None:
        return None
    leads: dict[str, Any] = {}
    if job.kind == "comment":
        leads = {"leads": len(job.payload.get("comments", [])), "lead_results": job.result}
    return JobDetail(
        id=job.id,
        kind=job.kind,
        lane=job.lane,
        state=str(job.state),
        attempts=job.attempts,
        created_at=job.created_at,
        updated_at=job.updated_at,
        last=job.last or None,
        **leads,
    )
