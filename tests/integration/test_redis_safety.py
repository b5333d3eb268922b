"""A Redis that would lose jobs is refused; a full Redis is an error for producers and a wait
for workers — with a real redis-server, real workers and the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import RunningSandbox, env_for
from tests.helpers import ROOT, RedisServer, free_port, run_ctq, wait_for
from tests.integration.test_faults import (
    StartWorker,
    accepted_so_far,
    callbacks_file,
    counts,
    enqueue_file,
    sent_ok,
)
from tests.redis_proxy import RedisProxy
from worker import jobstore, keys
from worker.scripts import script

pytestmark = pytest.mark.integration

CALLBACK = '{"routeKey": "rk", "phone": "79991234567"}'


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """A redis-server of this test's own, with extra options; stopped afterwards."""
    servers: list[RedisServer] = []

    def start(*options: str) -> RedisServer:
        server = RedisServer(free_port(), tmp_path / f"redis{len(servers)}")
        server.directory.mkdir()
        server.start(*options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_an_evicting_redis_is_refused_by_producers_and_workers(
    start_redis: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = start_redis("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    env = env_for(server.url, sandbox, tmp_path / "data")

    refused = run_ctq(["enqueue", "callback", CALLBACK], env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "maxmemory-policy allkeys-lru" in refused.stderr
    assert "CTQ_ALLOW_EVICTION" in refused.stderr
    assert redis.Redis.from_url(server.url).dbsize() == 0  # nothing enqueued

    worker = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--without-mingle"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 1 and "maxmemory-policy allkeys-lru" in worker.stderr

    allowed = run_ctq(["enqueue", "callback", CALLBACK], {**env, "CTQ_ALLOW_EVICTION": "true"})
    assert allowed.returncode == 0, allowed.stderr


def test_an_evicting_redis_is_refused_by_beat(
    start_redis: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = start_redis("--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru")
    env = env_for(server.url, sandbox, tmp_path / "data")

    beat = run_ctq(["beat"], env, timeout=30)
    assert beat.returncode == 1 and beat.stdout == ""
    assert "maxmemory-policy volatile-lru" in beat.stderr and "CTQ_ALLOW_EVICTION" in beat.stderr
    assert "Traceback" not in beat.stderr
    assert redis.Redis.from_url(server.url).dbsize() == 0  # it never ticked


def test_a_read_only_replica_refuses_enqueues_with_exit_3(
    start_redis: Callable[..., RedisServer], sandbox: RunningSandbox, tmp_path: Path
) -> None:
    primary, replica = start_redis(), start_redis()
    to_replica = redis.Redis.from_url(replica.url, decode_responses=True)
    to_replica.replicaof("127.0.0.1", primary.port)
    wait_for(lambda: to_replica.info("replication")["master_link_status"] == "up")
    env = env_for(replica.url, sandbox, tmp_path / "data")

    refused = run_ctq(["enqueue", "callback", CALLBACK], env)
    assert refused.returncode == 3 and refused.stdout == ""
    assert refused.stderr.startswith("ctq: Redis is read-only, a replica (")
    assert "nothing was enqueued" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    assert redis.Redis.from_url(primary.url).dbsize() == to_replica.dbsize() == 0


def test_a_full_redis_refuses_enqueues_and_workers_wait_then_resume_sending_each_job_once(
    start_redis: Callable[..., RedisServer],
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: StartWorker,
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = start_redis()  # noeviction, Redis' default
    sandbox = start_sandbox(rate=20, latency=(0.2, 0.5))  # requests are in flight when it fills
    env = env_for(server.url, sandbox, tmp_path / "data", CTQ_RATE_LIMIT="20/second")
    start_beat(env)
    worker = start_worker(env, "-c", "4")
    phones = callbacks_file(tmp_path / "calls.jsonl", 60)
    enqueue_file(env, tmp_path / "calls.jsonl")
    wait_for(lambda: accepted_so_far(sandbox) >= 10, timeout=60, interval=0.01)

    client = redis.Redis.from_url(server.url)
    client.config_set("maxmemory", 1)  # full: every write is refused from now on

    refused = run_ctq(["enqueue", "callback", '{"routeKey": "rk", "phone": "79997770000"}'], env)
    assert refused.returncode == 3, refused.stderr
    assert "Redis is full" in refused.stderr and "nothing was enqueued" in refused.stderr
    assert "REDIS FULL" in run_ctq(["status"], env).stdout
    time.sleep(8)  # the worker waits for room instead of exiting
    assert worker.process.poll() is None, worker.output()[-3000:]

    client.config_set("maxmemory", 0)
    wait_for(lambda: counts(server.url)["done"] == 60, timeout=120, interval=0.5)
    assert sent_ok(sandbox) == Counter(phones)  # every phone, each exactly once
    assert counts(server.url)["dead"] == 0


def test_a_message_taken_as_redis_fills_up_is_kept_and_runs_once_redis_has_room(
    start_redis: Callable[..., RedisServer],
    sandbox: RunningSandbox,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    """kombu takes a message (BRPOP works on a full Redis) and then records it as unacked
    (refused): the worker must hold on to it rather than drop it."""
    server = start_redis()
    env = env_for(server.url, sandbox, tmp_path / "data")
    client = redis.Redis.from_url(server.url)
    [job_id] = run_ctq(["enqueue", "callback", CALLBACK], env).stdout.split()
    client.rename(keys.REALTIME, "aside")  # out of the worker's sight until it waits for work
    worker = start_worker(env, "-c", "1")
    time.sleep(1.0)  # the idle worker is blocked in BRPOP

    # One transaction: the message arrives and Redis is full before the worker can record it.
    with client.pipeline(transaction=True) as pipe:
        pipe.rpoplpush("aside", keys.REALTIME).config_set("maxmemory", 1).execute()
    wait_for(lambda: "waiting for Redis to record it" in worker.output(), timeout=30)
    assert client.llen(keys.REALTIME) == 0 and client.hlen(keys.KOMBU_UNACKED) == 0

    client.config_set("maxmemory", 0)
    wait_for(lambda: counts(server.url)["done"] == 1, timeout=60)
    assert sent_ok(sandbox) == Counter(["79991234567"])
    assert job_id in worker.output() and worker.process.poll() is None


@pytest.fixture
def redis_proxy(redis_server: RedisServer, redis_url: str) -> Iterator[RedisProxy]:
    proxy = RedisProxy(redis_server.port)
    yield proxy
    proxy.close()


def the_commit(client: redis.Redis) -> bytes:
    """The SHA of the enqueue's commit, loaded already: its first call is the commit itself."""
    commit = script(client, "commit_batch")
    client.script_load(commit.script)
    return commit.sha.encode()


def pool_updates(path: Path, count: int) -> Path:
    lines = (json.dumps({"phoneNumber": f"7495{n:07d}", "poolName": "p"}) for n in range(count))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_reply_lost_after_exec_is_confirmed_and_a_rerun_enqueues_nothing_new(
    redis_proxy: RedisProxy, real_redis: redis.Redis, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_proxy.url, sandbox, tmp_path / "data")
    path = pool_updates(tmp_path / "pool.jsonl", 20)
    redis_proxy.lose_reply_to = the_commit(real_redis)

    first = run_ctq(["enqueue", "pool-update", "--file", str(path)], env)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.split()) == 20 and real_redis.llen(keys.REALTIME) == 20

    again = run_ctq(["enqueue", "pool-update", "--file", str(path)], env)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "20 of 20 job(s) were enqueued before" in again.stderr
    assert real_redis.llen(keys.REALTIME) == 20


def test_when_redis_cannot_be_asked_the_producer_says_so_and_a_rerun_is_safe(
    redis_proxy: RedisProxy, real_redis: redis.Redis, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_proxy.url, sandbox, tmp_path / "data")
    path = pool_updates(tmp_path / "pool.jsonl", 20)
    redis_proxy.lose_reply_to = the_commit(real_redis)
    redis_proxy.refuse_after_loss = True

    first = run_ctq(["enqueue", "pool-update", "--file", str(path)], env)
    assert first.returncode == 3 and first.stdout == ""
    assert "could not be asked whether they were enqueued" in first.stderr
    assert "nothing was enqueued" not in first.stderr
    assert real_redis.llen(keys.REALTIME) == 20  # Redis did run it

    redis_proxy.refusing = False
    again = run_ctq(["enqueue", "pool-update", "--file", str(path)], env)
    assert again.returncode == 0 and len(again.stdout.split()) == 20
    assert real_redis.llen(keys.REALTIME) == 20  # nothing enqueued twice


def test_a_script_refused_by_a_full_redis_raises_the_refusal_itself(
    start_redis: Callable[..., RedisServer],
) -> None:
    """Redis 6 wraps a refusal inside a script in a generic error; waiting it out needs it."""
    client = redis.Redis.from_url(start_redis().url, decode_responses=True)
    client.hset(keys.job("job-1"), mapping={"state": "queued", "attempts": 0})
    client.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        jobstore.transition(client, "job-1", jobstore.State.RUNNING, now=time.time())
