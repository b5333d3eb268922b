"""Redis Sentinel: the primary is killed mid-run, or demoted by a planned failover (it stays
up, takes writes for seconds after the promotion, then throws them away and answers READONLY);
producers and workers find the new primary by themselves. Real processes: one primary, one
replica (two in one case), three sentinels, two workers, beat.

Replication is asynchronous: writes the primary acknowledged in its last moment may never
reach the replica. The test measures what that cost (printed) and asserts what must hold:
work continues by itself, and every job the new primary knows of is delivered."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from config import Settings
from tasks.producer import Producer, QueueUnavailable
from tests.api_process import ApiProcess
from tests.conftest import RunningSandbox, env_for
from tests.helpers import (
    RedisServer,
    WorkerProcess,
    free_port,
    redis_server_binary,
    run_ctq,
    wait_for,
)
from tests.integration.test_faults import StartWorker, accepted_so_far, callbacks_file, sent_ok
from worker import jobstore, keys

pytestmark = pytest.mark.integration

MASTER = "mymaster"
API_KEY = "api-test-key-sentinel"


@dataclass
class SentinelGroup:
    primary: RedisServer
    replicas: list[RedisServer]
    sentinels: list[subprocess.Popen[bytes]]
    ports: list[int]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.ports) + "/0"

    @property
    def replica(self) -> RedisServer:
        return self.replicas[0]

    def current_primary(self) -> int:
        answer = redis.Redis(port=self.ports[0]).sentinel_get_master_addr_by_name(MASTER)
        return int(answer[1])


@pytest.fixture
def sentinel_group(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SentinelGroup]:
    primary = RedisServer(free_port(), tmp_path / "primary")
    count = getattr(request, "param", 1)
    replicas = [RedisServer(free_port(), tmp_path / f"replica{n}") for n in range(count)]
    for server in (primary, *replicas):
        server.directory.mkdir()
    primary.start()
    for replica in replicas:
        replica.start("--replicaof", "127.0.0.1", str(primary.port))
    sentinels, ports = [], []
    for n in range(3):
        port = free_port()
        conf = tmp_path / f"sentinel{n}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        sentinels.append(
            subprocess.Popen(
                [redis_server_binary(), str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        ports.append(port)
    group = SentinelGroup(primary, replicas, sentinels, ports)
    wait_for(lambda: _knows_replicas(ports[0], count), timeout=30)
    yield group
    for process in sentinels:
        process.terminate()
        process.wait(10)
    for replica in replicas:
        replica.stop()
    primary.stop()


def _knows_replicas(port: int, count: int) -> bool:
    try:
        return len(redis.Redis(port=port).sentinel_slaves(MASTER)) >= count
    except redis.RedisError:
        return False


def callbacks_under_way(
    group: SentinelGroup,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> tuple[RunningSandbox, dict[str, str], list[WorkerProcess], list[str]]:
    """Beat and two workers on ``group``, 100 callbacks enqueued and 30 of them sent: the
    sandbox, the environment, the workers and the phones."""
    sandbox = start_sandbox(rate=20)
    env = env_for(group.url, sandbox, tmp_path / "data", CTQ_RATE_LIMIT="10/second")
    start_beat(env)
    workers = [start_worker(env, "-c", "4"), start_worker(env, "-c", "4")]
    phones = callbacks_file(tmp_path / "calls.jsonl", 100)
    enqueued = run_ctq(["enqueue", "callback", "--file", str(tmp_path / "calls.jsonl")], env)
    assert enqueued.returncode == 0, enqueued.stderr
    wait_for(lambda: accepted_so_far(sandbox) >= 30, timeout=60, interval=0.01)
    return sandbox, env, workers, phones


def delivered_after_failover(
    sandbox: RunningSandbox, env: dict[str, str], new_primary_port: int, tmp_path: Path
) -> Counter[str]:
    """Enqueue 20 more callbacks (producers find the new primary), wait until every job the
    new primary knows of is delivered and check the 20 went out: how often each phone was
    sent."""
    later = callbacks_file(tmp_path / "later.jsonl", 20, first_phone=79_990_600_000)
    after = run_ctq(["enqueue", "callback", "--file", str(tmp_path / "later.jsonl")], env)
    assert after.returncode == 0, after.stderr

    new_primary = redis.Redis(port=new_primary_port, decode_responses=True)
    known = [
        json.loads(new_primary.hget(key, "payload") or "{}").get("phone")
        for key in new_primary.scan_iter(keys.job("*"))
    ]

    def delivered() -> bool:
        counts = jobstore.counts(new_primary)
        return counts["done"] + counts["dead"] >= len(known) and all(
            phone in sent_ok(sandbox) for phone in known
        )

    wait_for(delivered, timeout=120, interval=0.5)
    sent = sent_ok(sandbox)
    assert set(later) <= set(sent)  # work enqueued after the failover went out
    return sent


class Resender(threading.Thread):
    """A producer that enqueues a new callback every 0.2 s until stopped; a callback refused
    is not sent again under the same phone (the next one is new), so the test can check that
    one refused as "nothing was enqueued" never goes out: the phones accepted, and the
    refusals (phone, message)."""

    def __init__(self, enqueue: Callable[[str], None], first_phone: int) -> None:
        super().__init__(daemon=True)
        self.enqueue, self.next_phone = enqueue, first_phone
        self.accepted: list[str] = []
        self.refusals: list[tuple[str, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            phone = str(self.next_phone)
            self.next_phone += 1
            try:
                self.enqueue(phone)
            except Exception as exc:  # a refusal, reported by the test
                self.refusals.append((phone, str(exc)))
            else:
                self.accepted.append(phone)

    def finish(self) -> list[str]:
        self.stop.set()
        self.join(30)
        assert not self.is_alive()
        return self.accepted


def python_producer(producer: Producer) -> Callable[[str], None]:
    def enqueue(phone: str) -> None:
        try:
            producer.callback({"routeKey": "rk", "phone": phone})
        except QueueUnavailable as refused:
            raise RuntimeError(f"python: {refused}") from refused

    return enqueue


def http_producer(api: ApiProcess) -> Callable[[str], None]:
    def enqueue(phone: str) -> None:
        answer = requests.post(
            f"{api.url}/v1/jobs/callback",
            json={"routeKey": "rk", "phone": phone},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )
        if answer.status_code != 202:
            raise RuntimeError(f"http {answer.status_code}: {answer.text}")

    return enqueue


def lost_and_twice(phones: list[str], sent: Counter[str]) -> tuple[list[str], int]:
    """The phones never sent, and how many sends were repeats."""
    return [p for p in phones if p not in sent], sum(n - 1 for n in sent.values() if n > 1)


def test_work_continues_by_itself_when_the_primary_is_killed(
    sentinel_group: SentinelGroup,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    sandbox, env, _, phones = callbacks_under_way(
        sentinel_group, start_sandbox, start_worker, start_beat, tmp_path
    )

    killed_at = time.monotonic()
    assert sentinel_group.primary.process
    sentinel_group.primary.process.send_signal(signal.SIGKILL)
    sentinel_group.primary.process.wait()
    wait_for(lambda: sentinel_group.current_primary() == sentinel_group.replica.port, timeout=30)
    failover = time.monotonic() - killed_at

    sent = delivered_after_failover(sandbox, env, sentinel_group.replica.port, tmp_path)
    lost, twice = lost_and_twice(phones, sent)
    print(
        f"\nfailover took {failover:.1f} s; of 100 callbacks enqueued before it, "
        f"{len(lost)} were lost and {twice} sent twice (asynchronous replication)"
    )


@pytest.mark.parametrize("sentinel_group", [1, 2], indirect=True, ids=["1-replica", "2-replicas"])
def test_work_continues_when_a_planned_failover_demotes_the_primary_under_the_workers(
    sentinel_group: SentinelGroup,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    start_api: Callable[..., ApiProcess],
    tmp_path: Path,
) -> None:
    sandbox, env, workers, phones = callbacks_under_way(
        sentinel_group, start_sandbox, start_worker, start_beat, tmp_path
    )
    # Producers that stay connected through the failover: `ctq serve` and a Python producer.
    api = start_api({**env, "CTQ_API_KEYS": API_KEY})
    python = Producer(
        Settings(_env_file=None, REDIS_URL=env["REDIS_URL"], CTQ_DATA_DIR=env["CTQ_DATA_DIR"])
    )
    producers = [
        Resender(http_producer(api), first_phone=79_990_700_000),
        Resender(python_producer(python), first_phone=79_990_800_000),
    ]
    try:
        for producer in producers:
            producer.start()
        time.sleep(1)

        old = redis.Redis(port=sentinel_group.primary.port)
        failover = redis.Redis(port=sentinel_group.ports[0])
        assert failover.execute_command("SENTINEL FAILOVER", MASTER)
        wait_for(
            lambda: sentinel_group.current_primary() != sentinel_group.primary.port, timeout=30
        )
        promoted = time.monotonic()
        # The old primary took writes until the sentinels demoted it (split: about 10 s, the
        # hazard this test is about); a replica now, it answers READONLY to every write.
        wait_for(lambda: old.info("replication")["role"] == "slave", timeout=30, interval=0.05)
        split = time.monotonic() - promoted
        with pytest.raises(redis.ReadOnlyError):
            old.set("ctq:test:write", "1")
        time.sleep(1)
    finally:
        accepted = [producer.finish() for producer in producers]
        python.close()
    refusals = [refusal for producer in producers for refusal in producer.refusals]

    sent = delivered_after_failover(sandbox, env, sentinel_group.current_primary(), tmp_path)
    assert all(worker.process.poll() is None for worker in workers)
    lost, twice = lost_and_twice(phones + accepted[0] + accepted[1], sent)
    print(
        f"\nplanned failover: the old primary took writes for {split:.1f} s after the "
        f"promotion; of 100 callbacks enqueued before it, and {len(accepted[0])} (http) and "
        f"{len(accepted[1])} (python) accepted during it, {len(lost)} were lost and {twice} "
        f"sent twice; {len(refusals)} enqueues refused:"
    )
    for message in sorted({message for _, message in refusals}):
        print(f"  {message[:300]}")
    # Unfenced, every job sent during the ten seconds the old primary still took writes was
    # sent again (70 of 100 here), and the producers lost about 50 of the 60 callbacks each
    # was told were accepted. A request in flight at the very moment of the promotion can
    # still be sent twice (worker.failover): one.
    assert split > 2, "the old primary was demoted at once: nothing was tested"
    assert twice <= 1, f"{twice} callbacks sent twice"
    assert not lost
    # An enqueue refused was refused as Redis trouble, with the reason; and one refused as
    # "nothing was enqueued" really was not.
    assert all(message.startswith(("http 503", "python: ")) for _, message in refusals)
    assert not [p for p, message in refusals if "nothing was enqueued" in message and p in sent]
