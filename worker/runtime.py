"""What a task needs at run time, built once per worker process (after the prefork fork)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import limits
import redis
import requests
from celery import Celery

from config import Settings
from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from config.accounts import Account
from worker import keys
from worker.calltouch import CalltouchClient, MissingCredentials
from worker.heartbeat import Heartbeat
from worker.ledger import Ledger
from worker.limiter import ALONE, Limiter, Permit, PointsClaim, Share, limiter_key
from worker.outcome import Verdict
from worker.pozvonim import PozvonimClient
from worker.redis_conn import connect


@dataclass(frozen=True)
class AccountLine:
    """What sending for one Calltouch account of CTQ_ACCOUNTS_FILE takes: its client (its
    site and token), its points ledger, its share of the rate."""

    client: CalltouchClient
    ledger: Ledger
    share: Share


@dataclass
class Runtime:
    """One process's settings, clients, limiters and ledgers; clock and sleep for tests.
    ``calltouch`` and ``ledger`` are the default account's (no client without its
    credentials), ``accounts`` the others'."""

    settings: Settings
    redis: redis.Redis
    calltouch: CalltouchClient | None
    limiter: Limiter
    ledger: Ledger
    accounts: dict[str, AccountLine] = field(default_factory=dict)
    pozvonim: PozvonimClient | None = None
    pozvonim_limiter: Limiter | None = None  # with ``pozvonim`` only
    heartbeat: Heartbeat | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    pid: int = field(default_factory=os.getpid)


class ApiClient(Protocol):
    """What the runner needs of a provider's client."""

    def post(
        self, path: str, body: dict[str, Any]
    ) -> requests.Response | requests.RequestException: ...

    def after(self, verdict: Verdict) -> bool: ...


NO_POINTS = PointsClaim("", 0, -1, 0)
POZVONIM_SUCCESS = frozenset({200, 201, 202, 204})


@dataclass(frozen=True)
class Channel:
    """How jobs of one provider are sent: its client, limiter, account, and points ledger."""

    client: ApiClient
    limiter: Limiter
    account: str
    ledger: Ledger | None = None
    success_statuses: frozenset[int] | None = None
    share: Share = ALONE

    def claim(self, kind: str, lane: str) -> PointsClaim:
        return self.ledger.claim(kind, lane) if self.ledger else NO_POINTS

    def settle(self, permit: Permit, success: bool) -> None:
        if self.ledger:
            self.ledger.settle(permit, success)


def channel(rt: Runtime, provider: str, account: str = DEFAULT_ACCOUNT) -> Channel:
    """The channel jobs of ``provider`` (and Calltouch ``account``) go through here."""
    if provider == "pozvonim":
        if rt.pozvonim is None or rt.pozvonim_limiter is None:
            raise MissingCredentials("set POZVONIM_UID and POZVONIM_API_KEY to send Pozvonim jobs")
        return Channel(
            rt.pozvonim,
            rt.pozvonim_limiter,
            f"pozvonim-{rt.pozvonim.uid}",
            success_statuses=POZVONIM_SUCCESS,
        )
    if account != DEFAULT_ACCOUNT:
        line = rt.accounts.get(account)
        if line is None:
            raise MissingCredentials(
                f"account {account!r} is not in this worker's CTQ_ACCOUNTS_FILE; give every "
                "worker the file its producers use"
            )
        return Channel(line.client, rt.limiter, line.ledger.site, line.ledger, share=line.share)
    if rt.calltouch is None:
        raise MissingCredentials("set CALLTOUCH_SITE_ID and CALLTOUCH_TOKEN to send its jobs")
    return Channel(rt.calltouch, rt.limiter, rt.ledger.site, rt.ledger)


def build_limiter(settings: Settings, client: redis.Redis, provider: str = "calltouch") -> Limiter:
    """The shared limiter of ``provider``'s API host behind CTQ_EGRESS_IP."""
    url, rate = settings.calltouch_api_url, settings.rate
    if provider == "pozvonim":
        url, rate = settings.pozvonim_api_url, limits.parse(settings.pozvonim_rate_limit)
    key = limiter_key(settings.egress_ip, url)
    client.sadd(keys.LIMITERS, key)
    return Limiter(
        client,
        key,
        rate,
        margin=settings.limiter_margin_ms / 1000,
        margin_max=settings.limiter_margin_max_ms / 1000,
        realtime_queues=keys.queues(keys.REALTIME, settings.accounts),
        realtime_reserve=settings.limiter_realtime_reserve_s,
    )


def build_runtime(settings: Settings, redis_url: str) -> Runtime:
    client = connect(settings, redis_url)
    default = settings.account(None)
    client.sadd(keys.SITES, *(account.site for account in settings.accounts.values()))
    pozvonim = PozvonimClient.from_settings(settings, client)
    return Runtime(
        settings=settings,
        redis=client,
        calltouch=CalltouchClient.for_account(settings, default) if default.token else None,
        limiter=build_limiter(settings, client),
        ledger=Ledger(client, settings, time.time, default),
        accounts={
            account.name: account_line(settings, client, account)
            for account in settings.accounts.values()
            if account.name != DEFAULT_ACCOUNT
        },
        pozvonim=pozvonim,
        pozvonim_limiter=build_limiter(settings, client, "pozvonim") if pozvonim else None,
        heartbeat=Heartbeat(client, every=settings.lease_seconds / 3),
    )


def account_line(settings: Settings, client: redis.Redis, account: Account) -> AccountLine:
    return AccountLine(
        CalltouchClient.for_account(settings, account),
        Ledger(client, settings, time.time, account),
        Share(account.name, account.weight),
    )


class CtqApp(Celery):
    """ctq's Celery app: it knows ctq's settings and builds each process's ``Runtime`` the
    first time a task there needs it (a prefork child after the fork, never sharing the
    parent's sockets)."""

    def __init__(self, settings: Settings, redis_url: str, **options: Any) -> None:
        super().__init__("ctq", **options)
        self.ctq_settings = settings
        self.ctq_redis_url = redis_url
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None or self._runtime.pid != os.getpid():
            self._runtime = build_runtime(self.ctq_settings, self.ctq_redis_url)
        return self._runtime


def runtime_of(app: Celery) -> Runtime:
    """This process's runtime for ``app`` (created by ``worker.celery_app.create_app``)."""
    if not isinstance(app, CtqApp):
        raise TypeError(f"not a ctq app: {app!r}; create it with worker.celery_app.create_app")
    return app.runtime
