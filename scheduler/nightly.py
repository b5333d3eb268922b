"""The nightly lead-tagging run: each account's staged leads go out in requests of 100, in
its bulk queue, as many as its points budget allows today (leaving the realtime reserve); the
rest stay staged.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from config.accounts import Account
from tasks.jobstream import pack_leads
from tasks.models import CommentLead
from tasks.models.comment import MAX_LEADS_PER_REQUEST
from tasks.producer import Producer
from tasks.registry import KINDS
from worker import keys
from worker.keys import BULK
from worker.ledger import Ledger, day_of
from worker.messages import MessageBuilder
from worker.transactions import transact


@dataclass
class NightlyResult:
    """What one run did: in total, and per account (``accounts``, when run for all)."""

    leads: int
    requests: int
    left_staged: int
    skipped: bool = False
    accounts: dict[str, NightlyResult] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        shown = asdict(self)
        if not self.accounts:
            del shown["accounts"]
        else:
            shown["accounts"] = {name: r.as_dict() for name, r in self.accounts.items()}
        return shown


def requests_affordable(producer: Producer, account: Account) -> int | None:
    """Comment requests ``account``'s budget still pays for today in the bulk lane, less
    those already queued (they reserve their points only when sent); None without a budget."""
    settings = producer.settings
    if account.daily_points is None:
        return None
    ledger = Ledger(producer.redis, settings, time.time, account)
    today = ledger.today()
    if today["exhausted"]:
        return 0
    left = ledger.cap(BULK) - int(today["used"] or 0) - int(today["reserved"] or 0)
    cost = settings.point_costs.get("comment", 1)
    queued = int(producer.redis.llen(keys.queue(BULK, account.name)))
    paid = left if cost == 0 else math.floor(left / cost)
    return max(0, paid - queued)


def send_staged(producer: Producer, account: str | None = None) -> NightlyResult:
    """Each account's staged leads its budget allows, as comment jobs (one transaction an
    account); with ``account``, that account's only."""
    names = [account] if account else list(producer.settings.accounts)
    builder = MessageBuilder(producer.app)
    try:
        results = {name: _send_of(producer, builder, name) for name in names}
    finally:
        builder.close()
    return total(results)


def _send_of(producer: Producer, builder: MessageBuilder, name: str) -> NightlyResult:
    account = producer.settings.account(name)
    affordable = requests_affordable(producer, account)
    staged = keys.staged_comments(account.name)
    # Taken again from the start if leads are staged meanwhile (WATCH).
    return transact(
        producer.redis,
        lambda pipe: _take(producer, pipe, builder, affordable, account.name),
        staged,
    )


def _take(
    producer: Producer,
    pipe: redis.client.Pipeline,
    builder: MessageBuilder,
    affordable: int | None,
    account: str,
) -> NightlyResult:
    key = keys.staged_comments(account)
    staged = int(pipe.llen(key))
    take = staged if affordable is None else min(staged, affordable * MAX_LEADS_PER_REQUEST)
    raw: list[str] = pipe.lrange(key, 0, take - 1) if take else []  # type: ignore[assignment]
    bodies = pack_leads([CommentLead.model_validate_json(line) for line in raw])
    now = time.time()
    pipe.multi()
    pipe.ltrim(key, take, -1)
    for body in bodies:
        payload = body.api_body()
        producer.add_job(pipe, builder, KINDS["comment"], payload, now, account=account)
    return NightlyResult(leads=take, requests=len(bodies), left_staged=staged - take)


def total(results: dict[str, NightlyResult]) -> NightlyResult:
    """The sum of the accounts' runs, with each account's own."""
    return NightlyResult(
        leads=sum(r.leads for r in results.values()),
        requests=sum(r.requests for r in results.values()),
        left_staged=sum(r.left_staged for r in results.values()),
        skipped=bool(results) and all(r.skipped for r in results.values()),
        accounts=results,
    )


def scheduled_run(producer: Producer) -> NightlyResult:
    """The beat's run: each account at most once per day, however many beats send it."""
    day = day_of(time.time(), producer.settings.tz)
    results = {}
    builder = MessageBuilder(producer.app)
    try:
        for name in producer.settings.accounts:
            if producer.redis.set(keys.nightly_run(day, name), "1", nx=True, ex=2 * 86400):
                results[name] = _send_of(producer, builder, name)
            else:
                left = int(producer.redis.llen(keys.staged_comments(name)))
                results[name] = NightlyResult(0, 0, left, skipped=True)
    finally:
        builder.close()
    return total(results)
