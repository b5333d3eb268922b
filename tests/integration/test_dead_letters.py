"""Dead letters: a replay enqueues once however it is repeated or broken off, and old dead
letters and finished jobs' records go after their retention. A real redis-server, real
workers, the sandbox on loopback."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import redis
from kombu.exceptions import OperationalError
from redis.connection import AbstractConnection

from config import Settings
from tasks.producer import Producer
from tasks.replay import Replayed, choose, replay
from tests.conftest import RunningSandbox
from tests.helpers import WorkerProcess, run_ctq, stop_process_group, wait_for
from worker import deadletter, jobstore, keys
from worker.errors import CtqError, NotFound

pytestmark = pytest.mark.integration

PHONE = "79991230077"


def dead_letter_of(env: dict[str, str], sandbox: RunningSandbox, phone: str = PHONE) -> str:
    """A callback dead-lettered by a running worker (code 10003: no such widget); then the
    widget is "fixed": the sandbox answers as usual again."""
    sandbox.account(answer={"status": 400, "code": 10003})
    done = run_ctq(["enqueue", "callback", json.dumps({"routeKey": "rk", "phone": phone})], env)
    assert done.returncode == 0, done.stderr
    [job_id] = done.stdout.split()
    client = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
    wait_for(lambda: deadletter.get(client, job_id) is not None)
    sandbox.account(answer=None)
    return job_id


def producer_of(env: dict[str, str], **settings: str) -> Producer:
    return Producer(
        Settings(
            _env_file=None, REDIS_URL=env["REDIS_URL"], CTQ_DATA_DIR=env["CTQ_DATA_DIR"], **settings
        )
    )


def sent_ok(sandbox: RunningSandbox, phone: str = PHONE) -> int:
    return sum(1 for r in sandbox.received() if r["status"] == 200 and r["body"]["phone"] == phone)


def job_ids(client: redis.Redis) -> list[str]:
    return [str(k).removeprefix(keys.job("")) for k in client.scan_iter(keys.job("*"))]


def test_two_replays_of_one_dead_letter_at_once_enqueue_one_job_sent_once(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    start_worker(worker_env)
    dead_id = dead_letter_of(worker_env, sandbox)
    # Both replays chose the dead letter before either enqueued anything.
    chosen = choose(real_redis, [dead_id], False, None, "replayed")
    both_ready = threading.Barrier(2)

    def replay_once(_: int) -> Replayed:
        with producer_of(worker_env) as producer:
            both_ready.wait()
            return replay(producer, chosen)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(replay_once, range(2)))

    new_ids = {r.enqueued[dead_id] for r in results}
    assert len(new_ids) == 1, new_ids  # both answer with the one new job
    [new_id] = new_ids
    wait_for(lambda: jobstore.counts(real_redis)["done"] == 1, timeout=30)
    assert sorted(job_ids(real_redis)) == sorted([dead_id, new_id])
    assert sent_ok(sandbox) == 1
    assert deadletter.count(real_redis) == 0
    again = run_ctq(["dlq", "replay", dead_id], worker_env)
    assert (again.returncode, again.stdout) == (1, "")
    assert f"no dead letter {dead_id}; nothing was replayed" in again.stderr


@contextmanager
def broken_at(round_trip: int, reply_lost: bool) -> Iterator[list[int]]:
    """This process's ``round_trip``-th command to Redis (counting every connection) is where
    it stops: Ctrl-C before the command is sent (Redis runs nothing), or with ``reply_lost``
    the connection lost after Redis ran it (its answer never arrives). Yields the number of
    commands sent."""
    sent = [0]
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response
    lost: set[int] = set()

    def send_or_break(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        if sent[0] == round_trip and not reply_lost:
            self.disconnect()
            raise KeyboardInterrupt
        send(self, command, check_health)
        if sent[0] == round_trip:
            lost.add(id(self))

    def read_or_break(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        answer = read(self, *args, **kwargs)  # Redis has run the command (all of a MULTI)
        if id(self) in lost:
            lost.discard(id(self))
            self.disconnect()
            raise redis.ConnectionError("connection lost before the answer arrived (test)")
        return answer

    AbstractConnection.send_packed_command = send_or_break  # type: ignore[method-assign]
    AbstractConnection.read_response = read_or_break  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AbstractConnection.read_response = read  # type: ignore[method-assign]


def an_hour_later(client: redis.Redis) -> None:
    """Every key that expires within CTQ_IDEMPOTENCY_WINDOW (1 h) has expired."""
    for key in client.scan_iter():
        if 0 < client.ttl(key) <= 3600:
            client.delete(key)


def test_a_replay_stopped_anywhere_and_replayed_again_an_hour_later_enqueues_once(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    """A replay stops at each of its round trips to Redis in turn (Ctrl-C there, or the
    connection lost after Redis ran it); the dead letter, if still listed, is replayed again
    after CTQ_IDEMPOTENCY_WINDOW. Exactly one job must come of it every time."""
    worker = start_worker(worker_env)
    dead_id = dead_letter_of(worker_env, sandbox)
    stop_process_group(worker.process)  # what follows only counts jobs
    record, score = real_redis.hget(keys.DLQ, dead_id), real_redis.zscore(keys.DLQ_INDEX, dead_id)
    assert record is not None and score is not None
    with producer_of(worker_env) as producer:
        for reply_lost in (False, True):
            stopped = 0
            for round_trip in itertools.count(1):
                real_redis.flushall()
                real_redis.hset(keys.DLQ, dead_id, record)
                real_redis.zadd(keys.DLQ_INDEX, {dead_id: score})
                chosen = choose(real_redis, [dead_id], False, None, "replayed")
                with broken_at(round_trip, reply_lost) as sent:
                    try:
                        replay(producer, chosen)
                    except (KeyboardInterrupt, CtqError, redis.RedisError, OperationalError):
                        stopped += 1
                an_hour_later(real_redis)
                with suppress(NotFound):  # the first replay removed it
                    replay(producer, choose(real_redis, [dead_id], False, None, "replayed"))

                where = f"round trip {round_trip}, {'reply lost' if reply_lost else 'Ctrl-C'}"
                assert len(job_ids(real_redis)) == 1, where
                [job] = [jobstore.load(real_redis, job_id) for job_id in job_ids(real_redis)]
                assert job and job.payload == {"routeKey": "rk", "phone": PHONE}, where
                assert deadletter.count(real_redis) == 0, where
                if sent[0] < round_trip:  # it ran to its end unbroken: each point was tried
                    break
            assert stopped >= 1


def test_dead_letters_older_than_the_retention_are_deleted_and_newer_ones_kept(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    env = {**worker_env, "CTQ_DLQ_RETENTION_DAYS": "3"}
    worker = start_worker(env, "-l", "DEBUG")  # DEBUG: Celery's line when a task has run
    old, recent, new = (dead_letter_of(env, sandbox, f"7999123010{n}") for n in range(3))
    now = float(real_redis.time()[0])
    # As if they had been dead-lettered 4 days and 2 days ago.
    real_redis.zadd(keys.DLQ_INDEX, {old: now - 4 * 86400, recent: now - 2 * 86400})

    # What beat sends every hour, sent now.
    with producer_of(env) as producer:
        producer.app.send_task("ctq.trim_dead_letters", queue=keys.MAINTENANCE)
    ran = re.compile(r"Task ctq\.trim_dead_letters\[[0-9a-f-]+\] succeeded in [0-9.]+s: (\d+)")
    [deleted] = wait_for(lambda: ran.findall(worker.output()), timeout=30)
    assert deleted == "1"
    assert "INFO scheduler.maintenance: 1 dead letter(s) older than 3 days deleted" in (
        worker.output()
    )

    listed = json.loads(run_ctq(["dlq", "list", "--json"], env).stdout)
    assert sorted(r["id"] for r in listed) == sorted([recent, new])
    shown = run_ctq(["dlq", "show", old], env)
    assert (shown.returncode, shown.stderr) == (1, f"ctq: no dead letter {old}\n")


def test_a_finished_jobs_record_expires_after_the_job_retention(
    worker_env: dict[str, str],
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    real_redis: redis.Redis,
) -> None:
    env = {**worker_env, "CTQ_JOB_RETENTION_DAYS": "2"}
    start_worker(env)
    dead = dead_letter_of(env, sandbox)
    done = run_ctq(["enqueue", "callback", '{"routeKey": "rk", "phone": "79991230088"}'], env)
    [done_id] = done.stdout.split()
    wait_for(lambda: jobstore.counts(real_redis)["done"] == 1)

    for job_id in (done_id, dead):
        ttl = real_redis.ttl(keys.job(job_id))
        assert 2 * 86400 - 60 < ttl <= 2 * 86400, (job_id, ttl)
    later = ["--at", "2030-01-01T09:00:00"]
    held = run_ctq(
        ["enqueue", "callback", '{"routeKey": "rk", "phone": "79991230099"}', *later], env
    )
    [waiting] = held.stdout.split()
    assert real_redis.ttl(keys.job(waiting)) == -1  # a job still to run never expires
