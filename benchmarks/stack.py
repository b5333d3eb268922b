"""The stack a benchmark runs on: redis-server, the sandbox as its own process, workers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from config import Settings
from tasks.producer import Producer
from tests.helpers import (
    CTQ_WORKER,
    ROOT,
    SITE_ID,
    TEST_TOKEN,
    RedisServer,
    WorkerProcess,
    ctq_env,
    free_port,
    start_worker_process,
    stop_process_group,
    wait_for,
)


@dataclass
class Stack:
    """A running redis-server and sandbox; workers come and go per scenario."""

    redis_server: RedisServer
    sandbox_url: str
    directory: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True)

    def env(self, **overrides: str) -> dict[str, str]:
        return ctq_env(
            REDIS_URL=self.redis_server.url,
            CTQ_DATA_DIR=str(self.directory / "data"),
            CALLTOUCH_API_URL=self.sandbox_url,
            CALLTOUCH_SITE_ID=SITE_ID,
            CALLTOUCH_TOKEN=TEST_TOKEN,
            **overrides,
        )

    def producer(self) -> Producer:
        return Producer(
            Settings(
                _env_file=None,
                REDIS_URL=self.redis_server.url,
                CTQ_DATA_DIR=str(self.directory / "data"),
            )
        )

    def reset(self) -> None:
        """Empty Redis and the sandbox's record."""
        self.redis.flushall()
        requests.delete(f"{self.sandbox_url}/_sandbox/requests", timeout=10)

    def received(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.sandbox_url}/_sandbox/requests", timeout=30).json())

    @contextmanager
    def running_workers(
        self,
        env: dict[str, str],
        processes: int = 2,
        concurrency: int = 4,
        command: Sequence[str] = CTQ_WORKER,
    ) -> Iterator[None]:
        """``processes`` ``ctq worker`` processes (or ``command``) × ``concurrency``, with
        ``env`` on top."""
        started = [
            start_worker_process(
                self.env(**env),
                f"bench{n}",
                self.directory / f"worker{n}.log",
                "-c",
                str(concurrency),
                command=command,
            )
            for n in range(processes)
        ]
        try:
            for worker in started:
                worker.wait_ready()
            yield
        finally:
            for worker in started:
                stop_process_group(worker.process)


@contextmanager
def stack() -> Iterator[Stack]:
    directory = Path(tempfile.mkdtemp(prefix="ctq-bench-"))
    server = RedisServer(free_port(), directory)
    server.start()
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "sandbox", "--port", str(port), "--rate", "5"],
        env=ctq_env(CTQ_SANDBOX_TOKEN=TEST_TOKEN),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=30)
        yield Stack(server, url, directory)
    finally:
        stop_process_group(sandbox)
        server.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/_sandbox/stats", timeout=1).ok
    except requests.ConnectionError:
        return False
