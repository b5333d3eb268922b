"""Autodial campaigns: loaded callback rows released inside their call window, at their pace,
and no faster per phone than CTQ_CAMPAIGN_PHONE_INTERVAL (client-side, with ``limits``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import limits
import limits.storage
import limits.strategies
import redis
from redis.typing import EncodableT

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from scheduler.windows import CallWindow
from tasks.models import CallbackJob
from tasks.producer import Producer
from tasks.registry import KINDS
from worker import jobstore, keys
from worker.errors import InvalidInput, NotFound
from worker.messages import MessageBuilder
from worker.transactions import transact


class Lifecycle(StrEnum):
    """Where a campaign stands."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    # Not stored: an active or paused campaign with no row left whose every job has finished.
    FINISHED = "finished"


# A campaign in one of these states is over: its name may be loaded again, or deleted.
OVER = (Lifecycle.FINISHED, Lifecycle.CANCELLED)


class CampaignError(InvalidInput):
    """A campaign command that cannot be carried out (exists already, cancelled, …)."""


@dataclass(frozen=True)
class Campaign:
    name: str
    route_key: str
    window: str
    days: str
    timezone: str
    per_minute: int
    state: Lifecycle
    account: str = DEFAULT_ACCOUNT

    @property
    def call_window(self) -> CallWindow:
        return CallWindow.parse(self.window, self.days, self.timezone)


def load(producer: Producer, campaign: Campaign, rows: Iterable[CallbackJob]) -> int:
    """Store a new campaign and its validated rows, all or nothing; return how many rows."""
    producer.settings.account(campaign.account)  # an unknown account is refused first
    client = producer.redis
    lines = [row.model_dump_json(exclude_none=True) for row in rows]
    meta: dict[EncodableT, EncodableT] = {
        "route_key": campaign.route_key,
        "window": campaign.window,
        "days": campaign.days,
        "timezone": campaign.timezone,
        "per_minute": campaign.per_minute,
        "account": campaign.account,
        "state": Lifecycle.ACTIVE,
        "loaded": len(lines),
        "released": 0,
        "tokens": campaign.per_minute,
        "tick": time.time(),
        "created_at": time.time(),
    }
    key = keys.campaign(campaign.name)

    def create(pipe: redis.client.Pipeline) -> None:
        previous = progress(client, campaign.name)  # read after WATCH: a change aborts us
        if previous is not None and previous.state not in OVER:
            raise CampaignError(
                f"campaign {campaign.name!r} exists ({previous.state}); cancel it or pick a "
                "new name"
            )
        pipe.multi()
        pipe.delete(key, f"{key}:rows", f"{key}:jobs")  # a finished or cancelled one's
        pipe.hset(key, mapping=meta)
        for start in range(0, len(lines), 10_000):
            pipe.rpush(f"{key}:rows", *lines[start : start + 10_000])
        pipe.sadd(keys.CAMPAIGNS, campaign.name)

    # A load of the same name meanwhile: "exists"; a release meanwhile: looked at again.
    transact(client, create, key, f"{key}:rows", f"{key}:jobs")
    return len(lines)


def get(client: redis.Redis, name: str) -> Campaign:
    raw: dict[str, str] = client.hgetall(keys.campaign(name))  # type: ignore[assignment]
    if not raw:
        raise NotFound(f"no campaign {name!r}")
    return Campaign(
        name,
        raw["route_key"],
        raw["window"],
        raw["days"],
        raw["timezone"],
        int(raw["per_minute"]),
        Lifecycle(raw["state"]),
        raw.get("account", DEFAULT_ACCOUNT),
    )


def set_state(client: redis.Redis, name: str, state: Lifecycle) -> None:
    """Pause, resume or cancel; a cancelled campaign drops the rows not released yet."""
    current = progress(client, name)
    if current is None:
        raise NotFound(f"no campaign {name!r}")
    if current.state in OVER:
        raise CampaignError(f"campaign {name!r} is {current.state}")
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(keys.campaign(name), "state", state)
        if state == Lifecycle.CANCELLED:
            pipe.delete(f"{keys.campaign(name)}:rows")
        pipe.execute()


def release_due(producer: Producer, now: datetime, phone_interval: float) -> dict[str, int]:
    """Release every active campaign's due rows as callback jobs; return how many per name."""
    client = producer.redis
    per_phone = _phone_limiter(producer, phone_interval)
    released: dict[str, int] = {}
    builder = MessageBuilder(producer.app)
    try:
        for name in sorted(client.smembers(keys.CAMPAIGNS)):
            campaign = get(client, str(name))
            if campaign.state == Lifecycle.ACTIVE and campaign.call_window.is_open(now):
                released[campaign.name] = _release(producer, builder, campaign, now, per_phone)
    finally:
        builder.close()
    return released


def _phone_limiter(producer: Producer, interval: float) -> tuple[Any, limits.RateLimitItem]:
    storage = limits.storage.RedisStorage(
        "redis://", connection_pool=producer.redis.connection_pool
    )
    item = limits.RateLimitItemPerSecond(1, max(1, math.ceil(interval)))
    return limits.strategies.MovingWindowRateLimiter(storage), item


def _release(
    producer: Producer,
    builder: MessageBuilder,
    campaign: Campaign,
    now: datetime,
    per_phone: tuple[Any, limits.RateLimitItem],
) -> int:
    limiter, item = per_phone
    key = keys.campaign(campaign.name)

    def take(pipe: redis.client.Pipeline) -> tuple[int, list[str]]:
        tokens, tick = (float(v or 0) for v in pipe.hmget(key, "tokens", "tick"))
        stamp = now.timestamp()
        # A token bucket: per_minute a minute, at most one minute's worth at once.
        earned = max(0.0, stamp - tick) * campaign.per_minute / 60
        tokens = min(campaign.per_minute, tokens + earned)
        take = int(tokens) if tokens >= 1 else 0
        rows = [str(r) for r in pipe.lrange(f"{key}:rows", 0, take - 1)] if take else []
        ready: list[str] = []
        later: list[str] = []
        phones: list[str] = []
        for row in rows:
            phone = json.loads(row)["phone"]
            free = phone not in phones and limiter.test(item, "campaign-phone", phone)
            (ready if free else later).append(row)
            phones += [phone] if free else []
        pipe.multi()
        pipe.ltrim(f"{key}:rows", len(rows), -1)
        if later:
            pipe.rpush(f"{key}:rows", *later)
        for row in ready:
            job_id = producer.add_job(
                pipe, builder, KINDS["callback"], json.loads(row), stamp, account=campaign.account
            )
            pipe.rpush(f"{key}:jobs", job_id)
        pipe.hset(key, mapping={"tokens": tokens - len(rows), "tick": stamp})
        pipe.hincrby(key, "released", len(ready))
        return len(ready), phones

    # Taken again from the start if the campaign changes meanwhile (WATCH).
    released, phones = transact(producer.redis, take, key, f"{key}:rows")
    for phone in phones:  # only once the rows really left: a retry spends nothing
        limiter.hit(item, "campaign-phone", phone)
    return int(released)


def delete(client: redis.Redis, name: str) -> None:
    """Forget a finished or cancelled campaign: its settings and rows (its jobs' records
    expire by themselves)."""
    key = keys.campaign(name)

    def remove(pipe: redis.client.Pipeline) -> None:
        found = progress(client, name)  # read after WATCH: a change aborts us
        if found is None:
            raise NotFound(f"no campaign {name!r}")
        if found.state not in OVER:
            raise CampaignError(
                f"campaign {name!r} is {found.state}: cancel it first, or wait until it has "
                "finished"
            )
        pipe.multi()
        pipe.delete(key, f"{key}:rows", f"{key}:jobs")
        pipe.srem(keys.CAMPAIGNS, name)

    transact(client, remove, key, f"{key}:rows", f"{key}:jobs")


@dataclass(frozen=True)
class Progress:
    """A campaign's stored settings and counters, rows left, and its released jobs' states
    (None for a record that has expired: only finished jobs expire)."""

    meta: dict[str, str]
    left: int
    job_states: list[str | None]

    @property
    def state(self) -> Lifecycle:
        stored = Lifecycle(self.meta["state"])
        ended = all(s is None or s in jobstore.TERMINAL for s in self.job_states)
        running = stored in (Lifecycle.ACTIVE, Lifecycle.PAUSED)
        return Lifecycle.FINISHED if running and self.left == 0 and ended else stored


def progress(client: redis.Redis, name: str) -> Progress | None:
    key = keys.campaign(name)
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(key)
        pipe.llen(f"{key}:rows")
        pipe.lrange(f"{key}:jobs", 0, -1)
        meta, left, job_ids = pipe.execute()
    if not meta:
        return None
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(keys.job(job_id), "state")
        states = pipe.execute()
    return Progress(meta, int(left), states)


def status(client: redis.Redis, name: str, now: datetime) -> dict[str, Any]:
    """Loaded, released, done, failed, left, and when the rest should be released."""
    campaign = get(client, name)
    found = progress(client, name)
    if found is None:
        raise NotFound(f"no campaign {name!r}")
    meta, left, states = found.meta, found.left, found.job_states
    return {
        "name": name,
        "state": found.state,
        "window": f"{campaign.window} {campaign.days} {campaign.timezone}",
        "per_minute": campaign.per_minute,
        "account": campaign.account,
        "loaded": int(meta["loaded"]),
        "released": int(meta["released"]),
        "done": states.count(jobstore.State.DONE),
        "failed": states.count(jobstore.State.DEAD),
        "left": left,
        "eta": _eta(campaign, left, now) if campaign.state == Lifecycle.ACTIVE else None,
    }


def _eta(campaign: Campaign, left: int, now: datetime) -> str | None:
    """When the last row should be released, counting only open window minutes."""
    if left == 0:
        return None
    needed, window, moment = math.ceil(left / campaign.per_minute), campaign.call_window, now
    for _ in range(60 * 24 * 366):
        if window.is_open(moment):
            needed -= 1
            if needed == 0:
                return moment.astimezone(window.tz).strftime("%Y-%m-%d %H:%M %Z")
        moment += timedelta(minutes=1)
    return None


def names(client: redis.Redis) -> list[str]:
    return sorted(str(n) for n in client.smembers(keys.CAMPAIGNS))


def utcnow() -> datetime:
    return datetime.now(UTC)
