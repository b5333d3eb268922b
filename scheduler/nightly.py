"""The nightly lead-tagging run: staged leads go out in requests of 100, in the bulk lane,
as many as today's points budget allows (leaving the realtime reserve); the rest stay staged.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

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
    """What one run did."""

    leads: int
    requests: int
    left_staged: int
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requests_affordable(producer: Producer) -> int | None:
    """Comment requests today's budget still pays for in the bulk lane, less those already
    queued (they reserve their points only when sent); None without a budget."""
    settings = producer.settings
    if settings.daily_points is None:
        return None
    ledger = Ledger(producer.redis, settings, time.time)
    today = ledger.today()
    if today["exhausted"]:
        return 0
    left = ledger.cap(BULK) - int(today["used"] or 0) - int(today["reserved"] or 0)
    cost = settings.point_costs.get("comment", 1)
    queued = int(producer.redis.llen(keys.BULK))
    paid = left if cost == 0 else math.floor(left / cost)
    return max(0, paid - queued)


def send_staged(producer: Producer) -> NightlyResult:
    """Move the staged leads the budget allows into comment jobs, in one transaction."""
    affordable = requests_affordable(producer)
    builder = MessageBuilder(producer.app)
    try:
        # Taken again from the start if leads are staged meanwhile (WATCH).
        return transact(
            producer.redis,
            lambda pipe: _take(producer, pipe, builder, affordable),
            keys.STAGED_COMMENTS,
        )
    finally:
        builder.close()


def _take(
    producer: Producer,
    pipe: redis.client.Pipeline,
    builder: MessageBuilder,
    affordable: int | None,
) -> NightlyResult:
    staged = int(pipe.llen(keys.STAGED_COMMENTS))
    take = staged if affordable is None else min(staged, affordable * MAX_LEADS_PER_REQUEST)
    raw: list[str] = pipe.lrange(keys.STAGED_COMMENTS, 0, take - 1) if take else []  # type: ignore[assignment]
    bodies = pack_leads([CommentLead.model_validate_json(line) for line in raw])
    now = time.time()
    pipe.multi()
    pipe.ltrim(keys.STAGED_COMMENTS, take, -1)
    for body in bodies:
        payload = body.model_dump(mode="json", exclude_none=True)
        producer.add_job(pipe, builder, KINDS["comment"], payload, now)
    return NightlyResult(leads=take, requests=len(bodies), left_staged=staged - take)


def scheduled_run(producer: Producer) -> NightlyResult:
    """The beat's run: at most once per day, however many beat processes send it."""
    day = day_of(time.time(), producer.settings.tz)
    if not producer.redis.set(keys.nightly_run(day), "1", nx=True, ex=2 * 86400):
        return NightlyResult(0, 0, int(producer.redis.llen(keys.STAGED_COMMENTS)), skipped=True)
    return send_staged(producer)
