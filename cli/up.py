"""``ctq up``: the whole stack in one command, stopped together on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli.processes import DEFAULT_SANDBOX_PORT, SANDBOX_TOKEN_ENV, sandbox_pozvonim_account
from config import Settings
from worker import embedded_redis
from worker.redis_conn import redis_url

SANDBOX_SITE_ID = "12345"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "up",
        help="embedded Redis, sandbox, worker and beat in one command",
        description="Start the embedded Redis (unless REDIS_URL is set), the sandbox (unless "
        "CALLTOUCH_TOKEN is set), a worker and beat. Ctrl-C stops them all.",
    )
    parser.add_argument("--sandbox-port", type=int, default=DEFAULT_SANDBOX_PORT)
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


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env)


def run(args: argparse.Namespace, settings: Settings) -> int:
    env = dict(os.environ)
    url = redis_url(settings)  # starts the embedded Redis when REDIS_URL is unset
    embedded = not settings.redis_url
    children: dict[str, subprocess.Popen[bytes]] = {}
    lines = [
        f"redis    {url}"
        + (f"  (embedded, data in {settings.data_dir.resolve()})" if embedded else "")
    ]
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
        children["sandbox"] = _spawn(["sandbox", "--port", str(port)], env)
        lines.append(
            f"sandbox  http://127.0.0.1:{port}  (no CALLTOUCH_TOKEN set: jobs go here; "
            f"Pozvonim at /v2u)"
        )
    else:
        lines.append(f"api      {settings.calltouch_api_url}")
    children["worker"] = _spawn(["worker"], env)
    children["beat"] = _spawn(["beat"], env)
    lines += [f"{name:<8} pid {proc.pid}" for name, proc in children.items() if name != "sandbox"]
    ctq = _ctq_command()
    example = '\'{"routeKey": "rk", "phone": "79991234567"}\''
    print("ctq is up\n  " + "\n  ".join(lines), flush=True)
    print(
        f"In another terminal, same directory: {ctq} enqueue callback {example} && {ctq} status\n"
        "Ctrl-C stops everything.",
        flush=True,
    )
    try:
        _wait_for_exit(children)
    finally:
        _stop_all(children)
        if embedded:
            embedded_redis.stop(settings.data_dir)
        print("ctq is down", flush=True)
    return 0


def _ctq_command() -> str:
    """How the user can call this ctq: by name if it is on PATH, else by its path."""
    ours = Path(sys.executable).parent / "ctq"
    if shutil.which("ctq") == str(ours):
        return "ctq"
    return os.path.relpath(ours) if ours.is_relative_to(Path.cwd()) else str(ours)


def _wait_for_exit(children: dict[str, subprocess.Popen[bytes]]) -> None:
    stop = {"requested": False}

    def request_stop(signum: int, frame: Any) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop["requested"]:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping", flush=True)
                    return
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def _stop_all(children: dict[str, subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in children.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
