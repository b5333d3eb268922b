"""``ctq up``: the whole stack in one command, stopped together on Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from cli import serve
from cli.logs import announce
from cli.processes import DEFAULT_SANDBOX_PORT, SANDBOX_TOKEN_ENV, sandbox_pozvonim_account
from cli.stack import StackLock
from config import Settings
from worker import embedded_redis
from worker.redaction import masked_url
from worker.redis_conn import embedded_url

# Stopped in this order: the worker first, so jobs in flight finish while the sandbox still
# answers and Redis still records them; beat with it; the sandbox; Redis last.
STOP_ORDER = ("worker", "beat", "sandbox")
# A worker's warm shutdown waits for its jobs: a request may take CTQ_CONNECT_TIMEOUT +
# CTQ_READ_TIMEOUT (33 s by default).
STOP_TIMEOUT = 45.0

SANDBOX_SITE_ID = "12345"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "up",
        help="embedded Redis, sandbox, worker, beat and the HTTP API in one command",
        description="Start the embedded Redis (unless REDIS_URL is set), the sandbox (unless "
        "CALLTOUCH_TOKEN is set), a worker, beat and the HTTP API on 127.0.0.1 (with a key "
        "made for this run unless CTQ_API_KEYS is set). Ctrl-C stops them all.",
    )
    parser.add_argument("--sandbox-port", type=int, default=DEFAULT_SANDBOX_PORT)
    parser.add_argument("--api-port", type=int, default=serve.DEFAULT_PORT)
    parser.set_defaults(run=run)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port")


def _spawn(
    children: dict[str, subprocess.Popen[bytes]], name: str, args: list[str], env: dict[str, str]
) -> None:
    """Start ``ctq ARGS`` in its own process group, so it can be stopped with its pool."""
    children[name] = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], env=env, start_new_session=True
    )


STOP = threading.Event()


def _request_stop(signum: int, frame: Any) -> None:
    STOP.set()


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Ctrl-C and SIGTERM only ask to stop: start-up is never cut in half, so everything that
    # was started is known, and stopped.
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    embedded = not settings.redis_url
    lock = StackLock(settings.data_dir)
    lock.acquire()
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        lines = _start(args, settings, children)
        ctq = _ctq_command()
        example = '\'{"routeKey": "rk", "phone": "79991234567"}\''
        announce(settings, "ctq is up\n  " + "\n  ".join(lines))
        announce(
            settings,
            f"In another terminal, same directory: {ctq} enqueue callback {example} && "
            f"{ctq} status\nCtrl-C stops everything.",
        )
        _wait_for_exit(settings, children)
    finally:
        _stop_all(children)
        if embedded:
            # Ours to stop: this process holds the data directory's stack lock.
            embedded_redis.stop(settings.data_dir)
        (settings.data_dir / serve.API_KEY_FILE).unlink(missing_ok=True)
        lock.release()
        announce(settings, "ctq is down")
    return 0


def _start(
    args: argparse.Namespace, settings: Settings, children: dict[str, subprocess.Popen[bytes]]
) -> list[str]:
    """Start Redis (if embedded), the sandbox (if no token), a worker and beat; describe them."""
    env = dict(os.environ)
    if settings.redis_url:
        lines = [f"redis    {masked_url(settings.redis_url)}"]
    else:
        embedded_redis.ensure_running(settings.data_dir)
        where = f"  (embedded, data in {settings.data_dir.resolve()})"
        lines = [f"redis    {embedded_url(settings.data_dir)}{where}"]
    if settings.calltouch_token is None:
        port = free_port(args.sandbox_port)
        token = secrets.token_urlsafe(16)
        uid, api_key = sandbox_pozvonim_account(settings)
        env.update(
            {
                SANDBOX_TOKEN_ENV: token,
                "CALLTOUCH_TOKEN": token,
                "CALLTOUCH_API_URL": f"http://127.0.0.1:{port}",
                "CALLTOUCH_SITE_ID": settings.calltouch_site_id or SANDBOX_SITE_ID,
                "POZVONIM_API_URL": f"http://127.0.0.1:{port}/v2u",
                "POZVONIM_UID": uid,
                "POZVONIM_API_KEY": api_key,
            }
        )
        _spawn(children, "sandbox", ["sandbox", "--port", str(port)], env)
        lines.append(
            f"sandbox  http://127.0.0.1:{port}  (no CALLTOUCH_TOKEN set: jobs go here; "
            "Pozvonim at /v2u)"
        )
    else:
        lines.append(f"api      {settings.calltouch_api_url}")
    _spawn(children, "worker", ["worker"], env)
    _spawn(children, "beat", ["beat"], env)
    api_port = free_port(args.api_port)
    api_env, api_line = serve.for_up(settings, api_port)
    _spawn(children, "http-api", ["serve", "--port", str(api_port)], {**env, **api_env})
    lines.append(api_line)
    lines += [f"{name:<8} pid {proc.pid}" for name, proc in children.items() if name != "sandbox"]
    return lines


def _ctq_command() -> str:
    """How the user can call this ctq: by name if it is on PATH, else by its path."""
    ours = Path(sys.executable).parent / "ctq"
    if shutil.which("ctq") == str(ours):
        return "ctq"
    return os.path.relpath(ours) if ours.is_relative_to(Path.cwd()) else str(ours)


def _wait_for_exit(settings: Settings, children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Until Ctrl-C or SIGTERM, or until a child exits by itself."""
    while not STOP.wait(0.5):
        for name, proc in children.items():
            if proc.poll() is not None:
                announce(settings, f"{name} exited with status {proc.returncode}; stopping")
                return


def _stop_all(children: dict[str, subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT) -> None:
    """Stop the children in ``STOP_ORDER``: SIGTERM (a worker finishes its jobs: Celery's warm
    shutdown wants the signal on its main process only), then SIGKILL whatever is left in its
    process group."""
    for name in sorted(children, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else -1):
        proc = children[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        _signal_group(proc, signal.SIGKILL)  # whatever of its group is left
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
