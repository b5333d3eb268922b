"""``ctq resume [--site ID] [--lane LANE]``: lift a circuit-breaker pause by hand."""

from __future__ import annotations

import argparse
import time

from cli.common import redis_client
from config import Settings
from worker import keys
from worker.breaker import Breaker, open_breakers


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "resume",
        help="lift a paused lane (circuit breaker) and release its jobs",
        description="Close open circuit breakers (all of them, or those of --site / --lane) and "
        "requeue the jobs they held. Fix the cause first (token, callback minutes, service).",
    )
    parser.add_argument("--site", help="only this site id")
    parser.add_argument("--lane", choices=keys.LANES, help="only this lane")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = redis_client(settings)
    chosen = [
        b
        for b in open_breakers(client)
        if args.site in (None, b["site"]) and args.lane in (None, b["lane"])
    ]
    if not chosen:
        print("nothing is paused")
    for state in chosen:
        released = Breaker(client, state["site"], state["lane"]).close(time.time())
        print(
            f"resumed site {state['site']} {state['lane']} lane ({state['reason']}); "
            f"{released} held job(s) requeued"
        )
    return 0
