"""``ctq enqueue comment|callback|pool-update [JSON] [--file PATH|-]``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from cli.common import INVALID_INPUT, REDIS_UNAVAILABLE, CommandError, report_refusal
from config import Settings
from tasks.producer import Producer, QueueUnavailable
from tasks.registry import ENQUEUE_KINDS
from tasks.validation import JobValidationError

HELP = """Validate jobs and enqueue them, all or nothing.

Input is JSON in the API's own shape: one job per line (JSONL) from --file PATH or - (stdin),
or a single JSON argument. For comments each line is one lead, {"matching": [...],
"addComment": "..."}; ctq packs up to 100 leads per request. Prints one job id per line
(one per request). A job already enqueued under the same idempotency key within
CTQ_IDEMPOTENCY_WINDOW is not enqueued again: its first id is printed. Callbacks get a key by
default, a hash of their body, so the same callback twice within the window calls once.

Without --idempotency-key, every other job's key is derived from its content (the N-th
identical line of an input is its own job), so running the same input again within the
window enqueues nothing twice: safe after an exit 3 that could not tell whether Redis took
the jobs. To enqueue the same content again on purpose within the window (e.g. switching a
pool number back), give a new --idempotency-key.

Exit status: 0 enqueued; 2 invalid input (one line per problem, `line N: field.path: reason`,
nothing enqueued); 3 Redis unreachable (nothing enqueued).
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "enqueue",
        help="validate and enqueue jobs",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=ENQUEUE_KINDS)
    parser.add_argument("json", nargs="?", help="one job as a JSON object")
    parser.add_argument("--file", "-f", metavar="PATH", help="JSONL file, or - for stdin")
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="enqueue at most once per CTQ_IDEMPOTENCY_WINDOW; for several jobs, job N is KEY:N",
    )
    parser.add_argument(
        "--at",
        metavar="WHEN",
        type=datetime.fromisoformat,
        help="send no earlier than this ISO 8601 time (CTQ_TIMEZONE if it has no offset); "
        "the jobs wait in the durable delay set",
    )
    parser.set_defaults(run=run)


def read_input(args: argparse.Namespace) -> str:
    if (args.json is None) == (args.file is None):
        raise CommandError("give either a JSON argument or --file PATH|-", INVALID_INPUT)
    if args.json is not None:
        return str(args.json)
    if args.file == "-":
        return sys.stdin.read()
    try:
        with open(args.file, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}", INVALID_INPUT) from None


def _timestamp(when: datetime | None, settings: Settings) -> float | None:
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=settings.tz)).timestamp()


def run(args: argparse.Namespace, settings: Settings) -> int:
    text = read_input(args)
    producer = Producer(settings)
    try:
        job_ids = producer.from_json_lines(
            args.kind,
            text,
            idempotency_key=args.idempotency_key,
            not_before=_timestamp(args.at, settings),
        )
    except JobValidationError as exc:
        return report_refusal(exc.problems, "enqueued")
    except QueueUnavailable as exc:
        raise CommandError(str(exc), REDIS_UNAVAILABLE) from None
    finally:
        producer.close()
    for job_id in job_ids:
        print(job_id)
    if getattr(job_ids, "reused", 0):
        print(
            f"ctq: {job_ids.reused} of {len(job_ids)} job(s) were enqueued before (same "
            "idempotency key within CTQ_IDEMPOTENCY_WINDOW): their first ids are printed and "
            "they were not enqueued again",
            file=sys.stderr,
        )
    return 0
