"""``ctq jobs [--state S] [--kind K] [--limit N] [--json]``: jobs by state and kind."""

from __future__ import annotations

import argparse
import sys

from cli.common import print_json, redis_client, when
from config import Settings
from tasks.registry import KINDS
from worker.errors import InvalidInput
from worker.joblist import JobSummary, list_jobs
from worker.jobstore import State


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "jobs",
        help="list jobs by state and kind, newest first",
        description="Jobs newest first (by the time each entered its state), with the time "
        "delayed and scheduled jobs are due. Finished jobs are listed until their records "
        "expire (CTQ_JOB_RETENTION_DAYS).",
    )
    parser.add_argument(
        "--state", action="append", choices=[s.value for s in State], help="repeat for more"
    )
    parser.add_argument("--kind", choices=sorted(KINDS))
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    states = [State(s) for s in args.state] if args.state else None
    shown = list_jobs(redis_client(settings), states, args.kind, args.limit)
    if args.json:
        print_json([summary.as_dict() for summary in shown])
        return 0
    if not shown:
        print("no jobs")
    for summary in shown:
        print(format_line(summary))
    if len(shown) == args.limit:
        print(f"(the newest {args.limit}; --limit N shows more)", file=sys.stderr)
    return 0


def format_line(job: JobSummary) -> str:
    due = f"  due {when(job.due_at)}" if job.due_at else ""
    last = ""
    if job.last:
        why = job.last.get("reason") or job.last.get("outcome")
        last = f"  last: {why}: {job.last.get('message', '')}".rstrip(": ")
    return (
        f"{job.id}  {job.kind:<13} {job.state:<9} attempts {job.attempts}  "
        f"created {when(job.created_at)}  updated {when(job.updated_at)}{due}{last}"
    )
