"""``ctq flower``: Flower, Celery's monitoring web UI, on ctq's own Celery app."""

from __future__ import annotations

import argparse
import importlib.util

from api.auth import is_loopback
from config import Settings
from worker.errors import CtqError, InvalidInput

DEFAULT_PORT = 5555


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "flower",
        help="run Flower, Celery's web UI: tasks, workers, queues (needs ctq[flower])",
        description="Serve Flower on ctq's Celery app: every task with its job id, kind, "
        "state and runtime, the workers and the queues. Logins come from FLOWER_BASIC_AUTH "
        "(user:password[,user:password]); Flower can also revoke tasks and stop workers, so "
        "it is not served without them unless --insecure-no-auth on a loopback address. Any "
        "further options go to Flower (e.g. --url_prefix=flower).",
    )
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without FLOWER_BASIC_AUTH (loopback addresses only)",
    )
    parser.set_defaults(run=run, passthrough=True)


def flower_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    """``celery flower`` arguments: address, port, log level and the logins (passed inside
    this process, never on a command line another user could read)."""
    argv = [
        "flower",
        f"--address={args.address}",
        f"--port={args.port}",
        f"--logging={settings.log_level.lower()}",
    ]
    if settings.flower_basic_auth is not None:
        argv.append(f"--basic-auth={settings.flower_basic_auth.get_secret_value()}")
    elif not args.insecure_no_auth:
        raise InvalidInput(
            "no Flower logins: set FLOWER_BASIC_AUTH=user:password (or serve on 127.0.0.1 "
            "with --insecure-no-auth)"
        )
    elif not is_loopback(args.address):
        raise InvalidInput(
            f"--insecure-no-auth serves only on a loopback address, not {args.address}: "
            "set FLOWER_BASIC_AUTH"
        )
    return [*argv, *args.extra]


def run(args: argparse.Namespace, settings: Settings) -> int:
    if importlib.util.find_spec("flower") is None:
        raise CtqError("Flower is not installed: pip install 'ctq[flower]'")
    argv = flower_argv(args, settings)
    from cli.processes import banner_off
    from worker.celery_app import create_app

    create_app(settings).start([*banner_off(settings), *argv])
    return 0
