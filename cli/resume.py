"""``ctq resume [--site ID] [--lane LANE]``: lift a circuit-breaker pause by hand."""

from __future__ import annotations

import argparse
import time

from cli.common import redis_client
from config import Settings
from worker import keys
from worker.breaker import resume


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
    resumed = resume(redis_client(settings), time.time(), args.site, args.lane)
    if not resumed:
        print("nothing is paused")
    for state in resumed:
        print(
            f"resumed site {state['site']} {state['lane']} lane ({state['reason']}); "
            f"{state['released']} held job(s) requeued"
        )
    return 0
