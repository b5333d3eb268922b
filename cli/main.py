"""``ctq``: enqueue jobs, run the worker and beat, see status and dead letters."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

import redis
from pydantic import ValidationError
from pydantic_settings import SettingsError

from cli import (
    campaign,
    cancel,
    dlq,
    enqueue,
    flower,
    jobs,
    logs,
    nightly,
    processes,
    resume,
    serve,
    status,
    up,
)
from cli.common import report_refusal
from config import Settings
from config.settings import configuration_problems
from tasks.validation import JobValidationError
from worker.errors import FAILED, INVALID_INPUT, REDIS_UNAVAILABLE, CtqError
from worker.outage import TRANSIENT
from worker.redaction import redact_log_records, redact_text

# 128 + SIGINT, what a shell reports for a command stopped with Ctrl-C.
INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr, like every other failure, naming the
    command they belong to and where its usage is (its subcommands are made of this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(INVALID_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = Parser(
        prog="ctq", description="Rate-limited job worker for call-tracking APIs."
    )
    # Not required here: main names an unknown option before a missing command.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    up.add_parser(commands)
    processes.add_parsers(commands)
    enqueue.add_parser(commands)
    status.add_parser(commands)
    jobs.add_parser(commands)
    cancel.add_parser(commands)
    dlq.add_parser(commands)
    resume.add_parser(commands)
    nightly.add_parsers(commands)
    campaign.add_parser(commands)
    serve.add_parser(commands)
    flower.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error(f"unrecognized arguments: {' '.join(extra)}" if extra else "no COMMAND")
    if extra and not getattr(args, "passthrough", False):
        # Left over by the command's own parser: say so in its name, not in ctq's.
        action = getattr(args, "action", None)
        prog = " ".join(["ctq", args.command, *([action] if action else [])])
        Parser(prog=prog).error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    # Until the settings say how (CTQ_LOG_FORMAT), a library's early record still shows.
    logging.basicConfig(level=logging.INFO, format=logs.TEXT_FORMAT)
    redact_log_records()
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`ctq status --json | head`): nothing more to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED


def _run(args: argparse.Namespace) -> int:
    """Run the command; every failure becomes one line on stderr and its exit status."""
    try:
        problems = configuration_problems(os.environ)
        if problems:
            return _say(*(f"configuration: {problem}" for problem in problems), status=FAILED)
        settings = Settings()
        logs.configure(settings)
        return int(args.run(args, settings))
    except ValidationError as exc:
        return _say(*(f"configuration: {line}" for line in _settings_errors(exc)), status=FAILED)
    except SettingsError as exc:
        return _say(f"configuration: {_settings_source_error(exc)}", status=FAILED)
    except JobValidationError as exc:
        return report_refusal(exc.problems, "enqueued", exc.more)
    except CtqError as exc:
        return _say(f"ctq: {exc}", status=exc.exit_status)
    except TRANSIENT as exc:
        return _say(f"ctq: Redis is unavailable: {exc}", status=REDIS_UNAVAILABLE)
    except redis.RedisError as exc:
        return _say(f"ctq: Redis answered with an error: {redact_text(str(exc))}", status=FAILED)
    except KeyboardInterrupt:
        return _say("ctq: interrupted", status=INTERRUPTED)
    except BrokenPipeError:
        raise
    except Exception as exc:
        if os.environ.get("CTQ_DEBUG"):
            raise
        return _say(
            f"ctq: internal error: {type(exc).__name__}: {redact_text(str(exc))[:300]} "
            "(a bug in ctq; CTQ_DEBUG=1 shows where)",
            status=FAILED,
        )


def _say(*lines: str, status: int) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return status


def _settings_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        where = ".".join(map(str, err["loc"]))
        reason = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where + ': ' if where else ''}{reason}")
    return lines


def _settings_source_error(exc: SettingsError) -> str:
    """pydantic-settings names the field whose JSON did not parse; users know the variable."""
    for name, field in Settings.model_fields.items():
        if f'"{name}"' in str(exc):
            return f"{field.validation_alias}: not valid JSON"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
