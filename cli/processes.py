"""``ctq worker``, ``ctq beat`` and ``ctq sandbox``: the long-running processes."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from cli.logs import announce, celery_says_json
from config import Settings
from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from sandbox.faults import KINDS as fault_kinds
from sandbox.faults import FaultPlan, parse_kinds
from sandbox.pozvonim import PozvonimSandbox
from sandbox.server import Sandbox, SandboxHTTPServer
from sandbox.triggers import help_text
from worker import keys
from worker.errors import CtqError
from worker.outage import TRANSIENT
from worker.redis_conn import connect
from worker.redis_health import refuse_eviction

log = logging.getLogger(__name__)

DEFAULT_SANDBOX_PORT = 8765
SANDBOX_TOKEN_ENV = "CTQ_SANDBOX_TOKEN"


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a Celery worker (extra options go to `celery worker`)",
        description="Run a Celery worker on the realtime, bulk and maintenance queues. "
        "Any further options are passed to `celery worker` (e.g. -c 8, -Q realtime).",
    )
    worker.set_defaults(run=run_worker, passthrough=True)
    beat = commands.add_parser("beat", help="run the beat scheduler")
    beat.set_defaults(run=run_beat, passthrough=True)
    sandbox = commands.add_parser(
        "sandbox",
        help="run a local simulator of the Calltouch API",
        description="Serve the three Calltouch endpoints on 127.0.0.1 with the documented "
        "validation and answers, and 429 beyond --rate requests in any second per client IP. "
        f"It accepts the token in ${SANDBOX_TOKEN_ENV} (default 'sandbox-token'), and serves "
        "Pozvonim under /v2u for POZVONIM_UID / POZVONIM_API_KEY (default 1001 / sandbox-key).\n\n"
        + help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument("--port", type=int, default=DEFAULT_SANDBOX_PORT)
    sandbox.add_argument(
        "--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 only inside a container)"
    )
    sandbox.add_argument("--rate", type=int, default=5, help="requests per second per IP")
    sandbox.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of requests (0..1) that get a fault instead of being processed",
    )
    sandbox.add_argument(
        "--faults",
        default=",".join(fault_kinds),
        type=parse_kinds,
        help=f"which faults to draw from (default: {','.join(fault_kinds)})",
    )
    sandbox.add_argument("--slow-seconds", type=float, default=5.0, help="how slow 'slow' is")
    sandbox.add_argument(
        "--latency",
        type=parse_latency,
        default=(0.0, 0.0),
        metavar="MIN-MAX",
        help="delay each request by a random MIN..MAX seconds before it is counted against the "
        "rate (a network's varying inbound delay), e.g. 0-0.05",
    )
    sandbox.add_argument(
        "--retry-after",
        type=int,
        default=None,
        metavar="N",
        help="send 'Retry-After: N' (seconds) with every 429",
    )
    sandbox.add_argument("--verbose", action="store_true", help="log every request")
    sandbox.set_defaults(run=run_sandbox)


def parse_latency(text: str) -> tuple[float, float]:
    """``MIN-MAX`` in seconds (``0-0.05``), or one number for a fixed delay."""
    low, _, high = text.partition("-")
    try:
        bounds = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN-MAX in seconds, e.g. 0-0.05: {text!r}"
        ) from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX, got {text!r}")
    return bounds


def sandbox_pozvonim_account(settings: Settings) -> tuple[str, str]:
    """The Pozvonim uid and API key the sandbox accepts: ours if set, else its defaults."""
    key = settings.pozvonim_api_key
    return settings.pozvonim_uid or "1001", key.get_secret_value() if key else "sandbox-key"


def _celery_app(settings: Settings):  # type: ignore[no-untyped-def]
    from worker.celery_app import create_app

    return create_app(settings)


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    if not any(a.site_id and a.token for a in settings.accounts.values()):
        raise CtqError(
            "set CALLTOUCH_SITE_ID and CALLTOUCH_TOKEN (or accounts in CTQ_ACCOUNTS_FILE), or "
            "use `ctq up`, which starts the sandbox when no token is set"
        )
    wait_for_a_safe_redis(settings)
    queues = ",".join(keys.consume_order(settings.accounts))
    argv = ["worker", "-Q", queues, "-l", settings.log_level, *args.extra]
    _celery_app(settings).worker_main([*banner_off(settings), *argv])
    return 0


def banner_off(settings: Settings) -> list[str]:
    """Celery prints its start-up banner outside logging: not in JSON mode."""
    if settings.log_format == "text":
        return []
    celery_says_json()
    return ["--quiet"]


def wait_for_a_safe_redis(settings: Settings) -> None:
    """Wait until Redis answers (a worker may start before it), then refuse an evicting one."""
    client = connect(settings)
    waiting = False
    try:
        while True:
            try:
                refuse_eviction(client, settings)
                return
            except TRANSIENT as exc:
                if not waiting:
                    log.warning("waiting for Redis: %s", exc)
                    waiting = True
                time.sleep(1.0)
    finally:
        client.close()


def run_beat(args: argparse.Namespace, settings: Settings) -> int:
    wait_for_a_safe_redis(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = str(settings.data_dir / "beat-schedule")
    argv = ["beat", "-s", schedule, "-l", settings.log_level, *args.extra]
    _celery_app(settings).start([*banner_off(settings), *argv])
    return 0


def run_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    token = settings.sandbox_token.get_secret_value()
    try:
        faults = FaultPlan(args.fault_rate, args.faults, args.slow_seconds)
        account = PozvonimSandbox(*sandbox_pozvonim_account(settings))
        sites = {
            a.site_id: a.token.get_secret_value()
            for a in settings.accounts.values()
            if a.name != DEFAULT_ACCOUNT and a.site_id and a.token
        }
        sandbox = Sandbox(
            token,
            rate=args.rate,
            faults=faults,
            pozvonim=account,
            latency=args.latency,
            sites=sites,
            retry_after=args.retry_after,
        )
        server = SandboxHTTPServer(args.port, sandbox, args.verbose, args.bind)
    except OSError as exc:
        raise CtqError(f"cannot listen on {args.bind}:{args.port}: {exc.strerror}") from None
    announce(settings, f"sandbox listening on {server.url} (at most {args.rate} requests/s per IP)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.stdout.flush()
    return 0
