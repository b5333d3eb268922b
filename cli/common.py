"""Exit statuses and small helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis

from config import Settings
from worker.errors import INVALID_INPUT, RedisUnavailable
from worker.redis_conn import connect


def add_account_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--account",
        metavar="NAME",
        help="the Calltouch account of the jobs: a name of CTQ_ACCOUNTS_FILE (default: default, "
        "the account of CALLTOUCH_SITE_ID and CALLTOUCH_TOKEN)",
    )


def redis_client(settings: Settings) -> redis.Redis:
    client = connect(settings)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(f"Redis is unreachable: {exc}") from None
    return client


def report_refusal(problems: Sequence[object], nothing_was: str, more: int = 0) -> int:
    """Print every problem, one a line (and how many more were only counted), and the verdict
    on stderr; the exit status for it."""
    for problem in problems:
        print(problem, file=sys.stderr)
    if more:
        print(f"and {more} more problem(s)", file=sys.stderr)
    print(f"refused: {len(problems) + more} problem(s); nothing was {nothing_was}", file=sys.stderr)
    return INVALID_INPUT


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
