"""Exponential backoff with full jitter, as a pure function."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Full jitter (uniform between 0 and the exponential ceiling) spreads retries of many jobs
    that failed together, so they do not come back in one burst.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)
