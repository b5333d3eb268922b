"""The least any limiter could make c)'s callbacks wait: `python -m benchmarks.callback_floor`.

c) enqueues its callbacks at random moments, and the API takes at most 5 requests in any
second. When 6 of them arrive within 0.65 s, the 6th cannot be sent within 0.35 s of its
arrival however the batch behaves: at most 5 sends fit in any second, so it waits for the
first to leave the window. ``floor`` is the slowest callback's wait with nothing else sent
at all, each callback sent the moment the limit allows (in arrival order, which no other
order beats); ``main`` draws c)'s arrivals many times and counts how often that floor alone
is over 0.35 s.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

LIMIT, WINDOW = 5, 1.0  # the API's limit, without ctq's margin: the most room there is
CALLBACKS, SPREAD = 50, 32.0  # c): 50 callbacks at uniform moments over 0.8 × 40 s
TARGET = 0.35


def floor(arrivals: Sequence[float], limit: int = LIMIT, window: float = WINDOW) -> float:
    """The longest wait of the earliest schedule of ``arrivals`` under ``limit`` per
    ``window``: each send as soon as the limit-th send before it is a window old."""
    sent: list[float] = []
    longest = 0.0
    for arrival in sorted(arrivals):
        at = arrival if len(sent) < limit else max(arrival, sent[-limit] + window)
        sent.append(at)
        longest = max(longest, at - arrival)
    return longest


def share_over(target: float, draws: int, seed: int = 0) -> float:
    """How often c)'s random arrivals alone make a callback wait more than ``target``."""
    rng = random.Random(seed)
    over = sum(
        floor([rng.uniform(0, SPREAD) for _ in range(CALLBACKS)]) > target for _ in range(draws)
    )
    return over / draws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=100_000)
    args = parser.parse_args(argv)
    share = share_over(TARGET, args.draws)
    print(
        f"{CALLBACKS} callbacks at random over {SPREAD:.0f} s, {LIMIT} per {WINDOW:.0f} s, "
        f"nothing else sent: the slowest waits more than {TARGET} s in {share:.1%} of "
        f"{args.draws:,} draws"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
