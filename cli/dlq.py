"""``ctq dlq list|show|replay|purge``: dead letters, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from cli.common import print_json, redis_client, when
from config import Settings
from tasks.producer import Producer
from tasks.replay import choose, replay
from worker import deadletter
from worker.errors import INVALID_INPUT, InvalidInput, NotFound


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dlq",
        help="dead-lettered jobs",
        description="Dead letters keep the payload (secrets redacted), the API's code and "
        "message, attempts and times, for CTQ_DLQ_RETENTION_DAYS days.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)
    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("job_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="machine-readable output (default)")
    show.set_defaults(run=run_show)
    again = actions.add_parser(
        "replay", help="validate and enqueue dead letters again (ID..., --all or --code N)"
    )
    _add_selection(again)
    again.add_argument("--json", action="store_true", help="machine-readable output")
    again.set_defaults(run=run_replay)
    purge = actions.add_parser("purge", help="delete dead letters (ID..., --all or --code N)")
    _add_selection(purge)
    purge.set_defaults(run=run_purge)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", metavar="ID")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="every dead letter")
    group.add_argument("--code", type=int, help="those with this API code or HTTP status")


def _selected(args: argparse.Namespace, settings: Settings, doing: str) -> list[dict[str, Any]]:
    return choose(redis_client(settings), args.job_ids, args.all, args.code, doing)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    records = deadletter.list_records(redis_client(settings), args.limit)
    if args.json:
        print_json(records)
        return 0
    if not records:
        print("no dead letters")
    for r in records:
        # What --code selects by: the API's code, else the HTTP status.
        if r.get("code") is not None:
            answer = f"code {r['code']}"
        else:
            answer = f"HTTP {r['http_status']}" if r.get("http_status") else "no answer"
        print(
            f"{r['id']}  {when(r['dead_at'])}  {r['kind']:<11}  {answer:<10}  "
            f"attempts {r['attempts']}  {r['reason']}: {r['message']}"
        )
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    record = deadletter.get(redis_client(settings), args.job_id)
    if record is None:
        raise NotFound(f"no dead letter {args.job_id}")
    print_json(record)
    return 0


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    records = _selected(args, settings, "replayed")
    with Producer(settings) as producer:
        result = replay(producer, records)
    if args.json:
        print_json(
            {
                "enqueued": result.enqueued,
                "refused": {k: [str(p) for p in v] for k, v in result.refused.items()},
                "gone": result.gone,
            }
        )
    else:
        for old, new in result.enqueued.items():
            print(f"{old} -> {new}")
        for old, problems in result.refused.items():
            for problem in problems:
                print(f"{old}: refused: {problem.path}: {problem.reason}")
        for old in result.gone:
            print(f"{old}: gone (purged while this replay ran): nothing enqueued")
        print(f"replayed {len(result.enqueued)}, refused {len(result.refused)}")
    return INVALID_INPUT if result.refused else 0


def run_purge(args: argparse.Namespace, settings: Settings) -> int:
    records = _selected(args, settings, "purged")
    removed = deadletter.remove(redis_client(settings), [r["id"] for r in records])
    print(f"purged {removed} dead letter(s)")
    return 0
