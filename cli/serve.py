"""``ctq serve [--host 127.0.0.1] [--port 8080] [--insecure-no-auth]``: the HTTP API."""

from __future__ import annotations

import argparse
import secrets

from api.auth import is_loopback
from config import Settings
from worker.errors import CtqError, InvalidInput

DEFAULT_PORT = 8080


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the HTTP API (enqueue, status, dead letters, campaigns)",
        description="Serve the HTTP API on uvicorn: POST /v1/jobs/{kind} enqueues as `ctq "
        "enqueue` does; /docs documents every operation. Every request but /healthz needs "
        "Authorization: Bearer KEY, a key of CTQ_API_KEYS (comma-separated).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve without keys when CTQ_API_KEYS is unset (loopback addresses only)",
    )
    parser.set_defaults(run=run)


def check_auth(settings: Settings, host: str, insecure_no_auth: bool) -> bool:
    """Whether requests need a key; refuse to serve without keys unless asked to, on loopback."""
    if settings.api_key_list:
        return True
    if not insecure_no_auth:
        raise InvalidInput(
            "no API keys: set CTQ_API_KEYS=KEY[,KEY...] (or serve on 127.0.0.1 with "
            "--insecure-no-auth)"
        )
    if not is_loopback(host):
        raise InvalidInput(
            f"--insecure-no-auth serves only on a loopback address, not {host}: set CTQ_API_KEYS"
        )
    return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # only `ctq serve` needs the server

    from api.app import create_app

    require_auth = check_auth(settings, args.host, args.insecure_no_auth)
    app = create_app(settings, require_auth=require_auth)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        raise CtqError(f"cannot serve on {args.host}:{args.port}") from exc
    return 0


def for_up(settings: Settings, port: int) -> tuple[dict[str, str], str]:
    """What ``ctq up`` gives its API process (a key made for this run unless CTQ_API_KEYS is
    set), and the banner line that names the URL and that key, printed once."""
    url = f"http://127.0.0.1:{port}"
    if settings.api_key_list:
        return {}, f"http-api {url}  (keys from CTQ_API_KEYS; dashboard {url}/, docs {url}/docs)"
    key = secrets.token_urlsafe(24)
    line = (
        f"http-api {url}  key {key}  (Authorization: Bearer KEY; dashboard {url}/, docs {url}/docs)"
    )
    return {"CTQ_API_KEYS": key}, line
