"""``ctq serve [--host 127.0.0.1] [--port 8080] [--workers N] [--insecure-no-auth]``: the
HTTP API."""

from __future__ import annotations

import argparse
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from api.auth import is_loopback
from cli import logs
from config import Settings
from worker.errors import CtqError, InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_PORT = 8080
API_KEY_FILE = "api-key"
# How ``ctq serve --workers N`` tells the processes uvicorn starts what it was asked.
WORKER_OPTIONS = "CTQ_SERVE_OPTIONS"


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
        "--workers",
        type=int,
        help="processes serving the API on one port (default CTQ_API_WORKERS, 1); each uses "
        "one core at most, so up to one per core",
    )
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
    workers = settings.api_workers if args.workers is None else args.workers
    if workers < 1:
        raise InvalidInput(f"--workers must be at least 1, not {workers}")
    # log_config=None: uvicorn's records go to ctq's handler (cli.logs), in its format.
    options = {"host": args.host, "port": args.port, "log_config": None}
    options["log_level"] = settings.log_level.lower()
    try:
        if workers == 1:
            uvicorn.run(create_app(settings, require_auth=require_auth), **options)
        else:
            # uvicorn starts each process anew (and restarts one that dies): it builds its
            # app from the environment, with this command's host and flag.
            os.environ[WORKER_OPTIONS] = json.dumps(
                {"host": args.host, "insecure_no_auth": args.insecure_no_auth}
            )
            uvicorn.run(f"{__name__}:app_of_worker", factory=True, workers=workers, **options)
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        raise CtqError(f"cannot serve on {args.host}:{args.port}") from exc
    return 0


def app_of_worker() -> FastAPI:
    """The app of one of the processes of ``ctq serve --workers N``: the settings and the
    auth check of the command that started it, each made again in this process."""
    from api.app import create_app

    settings = Settings()
    logs.configure(settings)
    options = json.loads(os.environ.get(WORKER_OPTIONS, "{}"))
    require_auth = check_auth(
        settings, options.get("host", ""), bool(options.get("insecure_no_auth"))
    )
    return create_app(settings, require_auth=require_auth)


def for_up(settings: Settings, port: int) -> tuple[dict[str, str], str]:
    """What ``ctq up`` gives its API process (a key made for this run unless CTQ_API_KEYS is
    set), and the banner line that names the URL and that key, printed once. In JSON mode
    the banner is a log record, and a key has no place in logs: it goes to a file instead."""
    url = f"http://127.0.0.1:{port}"
    if settings.api_key_list:
        return {}, f"http-api {url}  (keys from CTQ_API_KEYS; dashboard {url}/, docs {url}/docs)"
    key = secrets.token_urlsafe(24)
    shown = f"key {key}"
    if settings.log_format == "json":
        shown = f"key in {write_key_file(settings.data_dir, key)}"
    line = (
        f"http-api {url}  {shown}  (Authorization: Bearer KEY; dashboard {url}/, docs {url}/docs)"
    )
    return {"CTQ_API_KEYS": key}, line


def write_key_file(data_dir: Path, key: str) -> Path:
    """The run's key in ``DATA_DIR/api-key``, readable by its owner only."""
    path = (data_dir / API_KEY_FILE).resolve()
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return path
