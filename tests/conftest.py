"""Fixtures: a real redis-server, the sandbox on loopback, real worker processes."""

from __future__ import annotations

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
import requests

from sandbox.faults import FaultPlan
from sandbox.server import Sandbox, SandboxHTTPServer
from tests.api_process import ApiProcess, start_api_process
from tests.helpers import (
    ROOT,
    SITE_ID,
    TEST_TOKEN,
    RedisServer,
    WorkerProcess,
    ctq_env,
    free_port,
    start_worker_process,
    stop_process_group,
)


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

    def account(self, **change: Any) -> None:
        """Change how the sandbox answers (``POST /_sandbox/account``): ``answer`` (an error
        for every request, of ``site_id`` only if given; None: as usual) or
        ``callback_minutes``."""
        requests.post(f"{self.url}/_sandbox/account", json=change, timeout=5).raise_for_status()


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., RunningSandbox]]:
    """Start sandboxes in this process (real HTTP on loopback); each is shut down afterwards."""
    servers: list[SandboxHTTPServer] = []

    def start(
        rate: int = 5,
        faults: FaultPlan | None = None,
        latency: tuple[float, float] = (0, 0),
        sites: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> RunningSandbox:
        sandbox = Sandbox(
            TEST_TOKEN,
            rate=rate,
            faults=faults,
            latency=latency,
            sites=sites,
            retry_after=retry_after,
        )
        server = SandboxHTTPServer(0, sandbox)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return RunningSandbox(server, TEST_TOKEN)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sandbox(start_sandbox: Callable[..., RunningSandbox]) -> RunningSandbox:
    return start_sandbox()


def env_for(
    redis_url: str, sandbox: RunningSandbox, data_dir: Path, **overrides: str
) -> dict[str, str]:
    """Environment for ctq processes: this Redis, this sandbox, fast retries."""
    defaults = {"CTQ_BACKOFF_BASE": "0.05", "CTQ_BACKOFF_MAX": "0.2", "CTQ_MAX_ATTEMPTS": "4"}
    return ctq_env(
        REDIS_URL=redis_url,
        CTQ_DATA_DIR=str(data_dir),
        CALLTOUCH_API_URL=sandbox.url,
        CALLTOUCH_SITE_ID=SITE_ID,
        CALLTOUCH_TOKEN=TEST_TOKEN,
        **{**defaults, **overrides},
    )


@pytest.fixture
def worker_env(redis_url: str, sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    return env_for(redis_url, sandbox, tmp_path / "data")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real ``ctq worker`` processes; each is stopped (its whole process group) afterwards."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *options: str) -> WorkerProcess:
        name = f"w{len(started)}"
        worker = start_worker_process(env, name, tmp_path / f"{name}.log", "-c", "2", *options)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        stop_process_group(worker.process)


@pytest.fixture
def start_beat(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    """Start ``ctq beat`` (it moves due jobs back to their queues); stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"beat{len(started)}.log", "wb") as out:
            beat = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "beat"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(beat)
        return beat

    yield start
    for beat in started:
        stop_process_group(beat)


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Start real ``ctq serve`` processes; each is stopped (by its process group) afterwards,
    and its output must hold none of its keys (they are secrets: never logged)."""
    started: list[tuple[ApiProcess, list[str]]] = []

    def start(env: dict[str, str], *options: str) -> ApiProcess:
        api = start_api_process(env, tmp_path / f"api{len(started)}.log", *options)
        keys = [k.strip() for k in env.get("CTQ_API_KEYS", "").split(",") if k.strip()]
        started.append((api, keys))
        api.wait_ready()
        return api

    yield start
    for api, keys in started:
        stop_process_group(api.process)
        output = api.output()
        assert not [key for key in keys if key in output]
