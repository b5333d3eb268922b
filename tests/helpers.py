"""Helpers for tests: free ports, waiting, running the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
