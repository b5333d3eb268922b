"""After each answer: finish, wait here, park durably, or dead-letter."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from config import Settings
from worker.backoff import compute_backoff
from worker.decision import Action, decide
from worker.outcome import Verdict

SETTINGS = Settings(
    CTQ_BACKOFF_BASE=1,
    CTQ_BACKOFF_MAX=300,
    CTQ_INPROCESS_WAIT_MAX=10,
    CTQ_MAX_ATTEMPTS=8,
    CTQ_LONG_RETRY_DELAY=3600,
)


@given(
    attempt=st.integers(1, 50),
    base=st.floats(0.01, 10),
    cap=st.floats(0.01, 1000),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_between_zero_and_the_capped_exponential(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = compute_backoff(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_backoff_is_jittered() -> None:
    rng = random.Random(1)
    delays = {compute_backoff(5, base=1, cap=300, rng=rng) for _ in range(20)}
    assert len(delays) == 20


def test_success_finishes_and_errors_dead_letter() -> None:
    assert decide(Verdict("http_2xx"), 1, SETTINGS).action is Action.FINISH
    assert decide(Verdict("api_10003"), 1, SETTINGS).action is Action.DEAD_LETTER


def test_account_level_errors_pause_instead_of_dead_lettering() -> None:
    for key in ("http_401", "http_403", "api_10001", "api_10002"):
        step = decide(Verdict(key), 1, SETTINGS)
        assert step.action is Action.PAUSE, key
    assert "minutes" in decide(Verdict("api_10001"), 1, SETTINGS).reason


def test_short_backoff_waits_in_process_and_long_ones_are_parked() -> None:
    early = decide(Verdict("http_5xx"), 1, SETTINGS, random.Random(0))
    assert early.action is Action.WAIT and 0 <= early.delay <= 1
    late = [decide(Verdict("http_5xx"), 7, SETTINGS, random.Random(s)) for s in range(50)]
    assert {s.action for s in late} == {Action.WAIT, Action.DELAY}
    assert all((s.action is Action.DELAY) == (s.delay > 10) for s in late)


def test_10005_and_10006_wait_the_long_delay_durably() -> None:
    for key in ("api_10005", "api_10006"):
        step = decide(Verdict(key), 1, SETTINGS)
        assert (step.action, step.delay) == (Action.DELAY, 3600)


def test_retry_after_is_honoured_as_a_minimum() -> None:
    step = decide(Verdict("http_429", retry_after=5), 1, SETTINGS, random.Random(0))
    assert step.delay == 5


def test_the_last_attempt_dead_letters_instead_of_retrying() -> None:
    step = decide(Verdict("http_5xx"), 8, SETTINGS)
    assert step.action is Action.DEAD_LETTER
    assert step.reason.startswith("gave up after 8 attempts")
