"""A real ``ctq serve`` process on 127.0.0.1 for tests and benchmarks, stopped by pid."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.helpers import ROOT, free_port, wait_for


@dataclass
class ApiProcess:
    """``ctq serve`` in its own process group, logging to a file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self._answers() or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.output()

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.ConnectionError:
            return False


def start_api_process(env: dict[str, str], log: Path, *options: str) -> ApiProcess:
    """Start ``ctq serve`` on a free loopback port (not waiting for it); stop it with
    ``stop_process_group``."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), *options],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ApiProcess(process, f"http://127.0.0.1:{port}", log)
