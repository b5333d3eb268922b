"""``ctq dlq list|show ID [--json]``: dead letters, newest first."""

from __future__ import annotations

import argparse

from cli.common import FAILED, print_json, redis_client, when
from config import Settings
from worker import deadletter


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dlq", help="dead-lettered jobs")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)
    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("job_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    records = deadletter.list_records(redis_client(settings), args.limit)
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("no dead letters")
    for r in records:
        code = r.get("code") if r.get("code") is not None else r.get("http_status") or "-"
        print(
            f"{r['id']}  {when(r['dead_at'])}  {r['kind']:<11}  code {code:<6} "
            f"attempts {r['attempts']}  {r['reason']}: {r['message']}"
        )
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    record = deadletter.get(redis_client(settings), args.job_id)
    if record is None:
        print(f"no dead letter {args.job_id}")
        return FAILED
    print_json(record)
    return 0
