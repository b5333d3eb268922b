"""``ctq enqueue comment|callback|pool-update [JSON] [--file PATH|-]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

from cli.common import add_account_option, report_refusal
from config import Settings
from tasks import send_time
from tasks.batch import StagingExpired
from tasks.producer import Producer
from tasks.registry import ENQUEUE_KINDS
from tasks.validation import JobValidationError, split_lines
from worker.errors import CtqError, InvalidInput

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

The input is read line by line (a file of any size), its jobs are written to Redis as they
are read where no worker sees them, and made visible all at once when the last line is in.
Problems are listed for the whole input; past the first 1000 they are only counted.

Exit status: 0 enqueued; 2 invalid input (one line per problem, `line N: field.path: reason`,
nothing enqueued); 3 Redis unreachable (nothing enqueued).
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        type=_iso_time,
        help="send no earlier than this ISO 8601 time (CTQ_TIMEZONE if it has no offset); "
        "the jobs wait in the durable delay set",
    )
    add_account_option(parser)
    parser.set_defaults(run=run)


@contextmanager
def input_lines(args: argparse.Namespace) -> Iterator[Iterable[str | bytes]]:
    """The lines of the JSON argument, of --file PATH, or of stdin (-): files are read one
    line at a time, as bytes (ending at "\\n" only; decoded line by line)."""
    if (args.json is None) == (args.file is None):
        raise InvalidInput("give either a JSON argument or --file PATH|-")
    if args.json is not None:
        yield split_lines(str(args.json))
        return
    if args.file == "-":
        yield _read(sys.stdin.buffer, "stdin")
        return
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(open(args.file, "rb"))
        except OSError as exc:
            raise InvalidInput(f"cannot read {args.file}: {exc.strerror}") from None
        yield _read(handle, args.file)


def _read(handle: BinaryIO, name: str) -> Iterator[bytes]:
    # A read error is the input's fault, not Redis': it must not pass for an outage.
    try:
        yield from handle
    except OSError as exc:
        raise InvalidInput(f"cannot read {name}: {exc.strerror}") from None


def _iso_time(text: str) -> str:
    try:
        return send_time.checked_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timestamp(at: str | None, settings: Settings) -> float | None:
    return None if at is None else send_time.timestamp(at, settings.tz)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings.account(args.account)  # an unknown account: refused before any input is read
    with input_lines(args) as lines, Producer(settings) as producer:
        try:
            job_ids = producer.from_json_lines(
                args.kind,
                lines,
                idempotency_key=args.idempotency_key,
                not_before=_timestamp(args.at, settings),
                account=args.account,
            )
        except JobValidationError as exc:
            return report_refusal(exc.problems, "enqueued", exc.more)
        except StagingExpired as exc:
            raise CtqError(f"{exc}; nothing was enqueued") from None
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
