"""``ctq``: enqueue jobs, run the worker and beat, see status and dead letters."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from cli import campaign, dlq, enqueue, nightly, processes, resume, serve, status, up
from cli.common import FAILED, REDIS_UNAVAILABLE, CommandError
from config import Settings
from tasks.producer import QueueUnavailable
from worker.embedded_redis import EmbeddedRedisError
from worker.redaction import redact_log_records
from worker.redis_health import EvictingRedis


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctq", description="Rate-limited job worker for call-tracking APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.add_parser(commands)
    processes.add_parsers(commands)
    enqueue.add_parser(commands)
    status.add_parser(commands)
    dlq.add_parser(commands)
    resume.add_parser(commands)
    nightly.add_parsers(commands)
    campaign.add_parser(commands)
    serve.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_log_records()
    try:
        settings = Settings()
        return int(args.run(args, settings))
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(map(str, err["loc"]))
            reason = str(err["msg"]).removeprefix("Value error, ")
            print(f"configuration: {where + ': ' if where else ''}{reason}", file=sys.stderr)
        return FAILED
    except QueueUnavailable as exc:
        print(f"ctq: {exc}", file=sys.stderr)
        return REDIS_UNAVAILABLE
    except (CommandError, EmbeddedRedisError, EvictingRedis) as exc:
        print(f"ctq: {exc}", file=sys.stderr)
        return getattr(exc, "status", FAILED)


if __name__ == "__main__":
    sys.exit(main())
