"""After a verdict: finish, wait and try again here, delay durably, or dead-letter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from config import Settings
from config.policy import Delay, Outcome
from worker.backoff import compute_backoff
from worker.outcome import Verdict


class Action(StrEnum):
    FINISH = "finish"
    REPERMIT = "repermit"  # rate-limited: book a new permit; not an attempt
    AWAIT_RESET = "await_reset"  # points spent: park until the day resets; not an attempt
    PAUSE = "pause"  # account-level: open the breaker, hold the lane; not an attempt
    WAIT = "wait"  # sleep in this process, then try again
    DELAY = "delay"  # park in the durable delay set; the beat moves it back when due
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Step:
    action: Action
    delay: float = 0.0
    reason: str = ""


def decide(
    verdict: Verdict,
    attempt: int,
    settings: Settings,
    rng: random.Random | None = None,
) -> Step:
    """What to do after attempt number ``attempt`` came to ``verdict``.

    Rate-limit and points answers are not attempts: the caller does not count them.
    """
    rule = verdict.rule
    if rule.outcome is Outcome.DONE:
        return Step(Action.FINISH)
    if rule.outcome is Outcome.DEAD:
        return Step(Action.DEAD_LETTER, reason=rule.why)
    if rule.delay is Delay.LIMITER:
        return Step(Action.REPERMIT, delay=verdict.retry_after or 0.0, reason=rule.why)
    if rule.delay is Delay.RESET:
        return Step(Action.AWAIT_RESET, reason=rule.why)
    if rule.outcome is Outcome.PAUSE:
        return Step(Action.PAUSE, reason=rule.why)
    if attempt >= settings.max_attempts:
        return Step(Action.DEAD_LETTER, reason=f"gave up after {attempt} attempts: {rule.why}")
    if rule.delay is Delay.LONG:
        delay = settings.long_retry_delay
    else:
        delay = compute_backoff(
            attempt, base=settings.backoff_base, cap=settings.backoff_max, rng=rng
        )
        delay = max(delay, verdict.retry_after or 0.0)
    action = Action.WAIT if delay <= settings.inprocess_wait_max else Action.DELAY
    return Step(action, delay=delay, reason=rule.why)
