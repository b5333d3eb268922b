"""``ctq stage comment --file PATH|-`` and ``ctq nightly run``: the nightly lead tagging."""

from __future__ import annotations

import argparse

from cli.common import REDIS_UNAVAILABLE, CommandError, print_json, report_refusal
from cli.enqueue import read_input
from config import Settings
from scheduler.nightly import send_staged
from tasks.producer import Producer, QueueUnavailable
from tasks.validation import JobValidationError, parse_json_lines


def add_parsers(commands: argparse._SubParsersAction) -> None:
    stage = commands.add_parser(
        "stage",
        help="stage lead comments for the nightly run",
        description="Validate leads (JSONL, one lead per line, as for `ctq enqueue comment`) "
        "and stage them, all or nothing, for the nightly run at CTQ_NIGHTLY_AT.",
    )
    stage.add_argument("kind", choices=["comment"])
    stage.add_argument("json", nargs="?", help="one lead as a JSON object")
    stage.add_argument("--file", "-f", metavar="PATH", help="JSONL file, or - for stdin")
    stage.set_defaults(run=run_stage)
    nightly = commands.add_parser("nightly", help="the nightly lead-tagging run")
    actions = nightly.add_subparsers(dest="action", required=True)
    now = actions.add_parser(
        "run", help="send the staged leads now (as many as today's points budget allows)"
    )
    now.add_argument("--json", action="store_true", help="machine-readable output")
    now.set_defaults(run=run_now)


def run_stage(args: argparse.Namespace, settings: Settings) -> int:
    text = read_input(args)
    producer = Producer(settings)
    try:
        staged = producer.stage_comments(value for _, value in parse_json_lines(text))
    except JobValidationError as exc:
        return report_refusal(exc.problems, "staged")
    except QueueUnavailable as exc:
        raise CommandError(str(exc), REDIS_UNAVAILABLE) from None
    finally:
        producer.close()
    print(
        f"{staged} lead(s) staged for the nightly run at {settings.nightly_at} {settings.timezone}"
    )
    return 0


def run_now(args: argparse.Namespace, settings: Settings) -> int:
    producer = Producer(settings)
    try:
        result = send_staged(producer)
    finally:
        producer.close()
    if args.json:
        print_json(result.as_dict())
    else:
        print(
            f"sent {result.leads} lead(s) in {result.requests} request(s); "
            f"{result.left_staged} left staged"
        )
    return 0
