"""Injected faults: a share of requests get 502, 503, a slow answer, or a dropped connection.

A faulted request is never processed (nothing is created or commented), so a client that
retries it cannot cause a duplicate here. The real API may process a request whose answer
was lost; that window is in the README.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

KINDS = ("502", "503", "slow", "drop")


@dataclass
class FaultPlan:
    """Fault ``rate`` (0..1) drawn from ``kinds``; a slow answer takes ``slow_seconds``."""

    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    slow_seconds: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.kinds)


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS)
    if not kinds or unknown:
        raise ValueError(f"faults must be some of {', '.join(KINDS)}")
    return kinds
