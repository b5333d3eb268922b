"""``ctq cancel JOB_ID...``: cancel jobs that have not been sent yet."""

from __future__ import annotations

import argparse
import sys
import time

from cli.common import redis_client
from config import Settings
from worker.cancel import cancel_jobs
from worker.errors import FAILED, OK, CtqError
from worker.jobstore import State


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cancel",
        help="cancel jobs not sent yet",
        description="Cancel queued, scheduled or delayed, held (paused) and retrying jobs: "
        "they are never sent afterwards. A job being sent right now, or already done or "
        "dead, cannot be cancelled. Exit 1 if any named job could not be.",
    )
    parser.add_argument("job_ids", nargs="+", metavar="JOB_ID")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = redis_client(settings)
    keep = settings.job_retention_days * 86400
    status = OK
    for job_id, outcome in cancel_jobs(client, args.job_ids, now=time.time(), keep_seconds=keep):
        if isinstance(outcome, CtqError):
            print(f"ctq: {outcome}", file=sys.stderr)
            status = FAILED
        elif outcome is State.CANCELLED:
            print(f"{job_id} was cancelled already")
        else:
            print(f"{job_id} cancelled (was {outcome})")
    return status
