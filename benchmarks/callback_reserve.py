"""What leaving permits to callbacks buys in c): `python -m benchmarks.callback_reserve`.

A model of the limiter's pacing (``acquire.lua``), not the limiter: c)'s 200 bulk requests
want every slot while its 50 callbacks arrive at random over 32 s. A callback books the
first slot the window allows at once; while callbacks are recent, a bulk job leaves some
permits of every window free and is paced ``keep / room`` apart. For a fixed number of free
permits, and for ctq's rule (one, plus the callbacks a window saw on average over the last
5 s), it prints how often the slowest callback waits at most 0.35 s (c)'s p99 of 50
callbacks is the slowest), beside how often the arrivals alone allow it
(``callback_floor``), and how long the bulk requests take.
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
from collections.abc import Callable, Sequence

from benchmarks.callback_floor import CALLBACKS, LIMIT, SPREAD, TARGET, WINDOW, floor
from worker.limiter import REALTIME_RESERVE_S, RESERVED_PERMITS

MARGIN = 0.025  # the limiter's margin on loopback (its floor)
KEEP = WINDOW + MARGIN
BULK = 200  # c)'s 20,000 leads, 100 per request
STEP = 0.002  # how often a bulk job looks for a free slot (it is told when to come back)

# How many permits bulk leaves free, given the realtime slots of the last REALTIME_RESERVE_S.
Rule = Callable[[int], int]


def fixed(reserve: int) -> Rule:
    return lambda recent: reserve if recent else 0


def ctq_rule(recent: int) -> int:
    """acquire.lua's: the reserve, plus the realtime permits a window saw on average."""
    if not recent:
        return 0
    return RESERVED_PERMITS + int(recent * KEEP / REALTIME_RESERVE_S + 0.5)


def run(arrivals: Sequence[float], rule: Rule) -> tuple[float, float]:
    """The slowest callback's wait and the last bulk request's moment, bulk starting at 0."""
    slots: list[float] = []
    realtime: list[float] = []
    pending = sorted(arrivals)
    slowest, last_bulk, bulk_left, now = 0.0, 0.0, BULK, 0.0
    while bulk_left or pending:
        while pending and pending[0] <= now:
            arrival = pending.pop(0)
            slot = max(arrival, slots[-1] + KEEP / LIMIT / 4 if slots else arrival)
            if len(slots) >= LIMIT:
                slot = max(slot, slots[-LIMIT] + KEEP)
            bisect.insort(slots, slot)
            realtime.append(slot)
            slowest = max(slowest, slot - arrival)
        if bulk_left:
            recent = sum(slot > now - REALTIME_RESERVE_S for slot in realtime[-50:])
            room = max(1, LIMIT - rule(recent))
            slot = max(now, slots[-1] + KEEP / room if slots else now)
            if len(slots) >= room:
                slot = max(slot, slots[-room] + KEEP)
            if slot - now <= 0.02:  # BULK_HORIZON_US
                bisect.insort(slots, slot)
                bulk_left, last_bulk = bulk_left - 1, slot
        now += STEP
    return slowest, last_bulk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=100)
    args = parser.parse_args(argv)
    rng = random.Random(0)
    # c) starts its callbacks with the batch; here 2 s in, once bulk fills the window.
    draws = [[2 + rng.uniform(0, SPREAD) for _ in range(CALLBACKS)] for _ in range(args.draws)]
    possible = sum(floor(d) <= TARGET for d in draws) / len(draws)
    print(f"{len(draws)} draws of c)'s arrivals: they alone allow {TARGET} s in {possible:.0%}")
    rules = {f"{n} free": fixed(n) for n in range(LIMIT)}
    for name, rule in {**rules, "ctq's rule": ctq_rule}.items():
        results = [run(d, rule) for d in draws]
        met = sum(slowest <= TARGET for slowest, _ in results) / len(results)
        batch = sum(last for _, last in results) / len(results)
        print(f"{name:>10}: slowest callback within {TARGET} s in {met:.0%}, batch {batch:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
