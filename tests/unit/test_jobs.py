"""Listing jobs by state and kind, and cancelling the ones not sent yet."""

from __future__ import annotations

import time
from pathlib import Path

import fakeredis
import pytest
import redis

from config import Settings
from scheduler.delay_mover import move_due
from tasks.producer import Producer
from worker import jobstore, keys
from worker.breaker import Breaker
from worker.cancel import NotCancellable, cancel_jobs
from worker.errors import NotFound
from worker.joblist import list_jobs
from worker.jobstore import State
from worker.messages import MessageBuilder
from worker.outcome import LastOutcome

CALLBACK = {"routeKey": "rk", "phone": "79991234567"}
POOL = {"phoneNumber": "74950000001", "displayOptions": {"source": "yandex"}}
DAY = 86400


def queued(client: redis.Redis, job_id: str, kind: str = "callback", at: float = 1.0) -> str:
    """A job as a producer leaves it: record, counter, index."""
    client.hset(keys.job(job_id), mapping=jobstore.new_fields(kind, "realtime", CALLBACK, at))
    client.hincrby(keys.STATS, "queued", 1)
    client.zadd(keys.jobs_in("queued"), {job_id: at})
    return job_id


def ids(client: redis.Redis, **filters: object) -> list[str]:
    return [job.id for job in list_jobs(client, **filters)]  # type: ignore[arg-type]


def cancel(client: redis.Redis, *job_ids: str, now: float = 100.0) -> list[object]:
    return [outcome for _, outcome in cancel_jobs(client, job_ids, now=now, keep_seconds=DAY)]


def test_every_state_change_moves_the_job_between_state_indexes(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    queued(fake_redis, "a")
    jobstore.transition(fake_redis, "a", State.RUNNING, now=2.0)
    assert ids(fake_redis, states=[State.QUEUED]) == []
    assert ids(fake_redis, states=[State.RUNNING]) == ["a"]
    jobstore.transition(fake_redis, "a", State.DONE, now=3.0, keep_seconds=DAY)
    assert ids(fake_redis, states=[State.RUNNING]) == []
    [done] = list_jobs(fake_redis, states=[State.DONE])
    assert (done.id, done.state, done.updated_at) == ("a", "done", 3.0)


def test_jobs_are_listed_newest_first_by_state_and_kind_up_to_the_limit(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    for n in range(5):
        queued(fake_redis, f"q{n}", kind="pool-update" if n % 2 else "callback", at=10.0 + n)
    jobstore.transition(fake_redis, "q0", State.DEAD, now=20.0, keep_seconds=DAY)
    assert ids(fake_redis) == ["q0", "q4", "q3", "q2", "q1"]
    assert ids(fake_redis, limit=2) == ["q0", "q4"]
    assert ids(fake_redis, kind="pool-update") == ["q3", "q1"]
    assert ids(fake_redis, states=[State.QUEUED], kind="callback") == ["q4", "q2"]
    assert ids(fake_redis, states=[State.DEAD, State.DONE]) == ["q0"]


def test_a_finished_job_leaves_the_index_when_its_record_has_expired(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    queued(fake_redis, "old")
    queued(fake_redis, "new")
    jobstore.transition(fake_redis, "old", State.DONE, now=1000.0, keep_seconds=DAY)
    fake_redis.delete(keys.job("old"))  # what its expiry does a day later
    assert ids(fake_redis, states=[State.DONE]) == []  # never listed once gone
    jobstore.transition(fake_redis, "new", State.DONE, now=1000.0 + DAY + 1, keep_seconds=DAY)
    assert fake_redis.zrange(keys.jobs_in("done"), 0, -1) == ["new"]


def test_a_delayed_job_is_listed_with_its_due_time(fake_redis: fakeredis.FakeRedis) -> None:
    queued(fake_redis, "d")
    fake_redis.zadd(keys.DELAYED, {"d": 5000.0})
    jobstore.transition(fake_redis, "d", State.DELAYED, now=2.0, last={"reason": "10006"})
    [job] = list_jobs(fake_redis, states=[State.DELAYED])
    assert (job.due_at, job.last) == (5000.0, {"reason": "10006"})


def test_cancel_takes_a_delayed_job_out_of_the_delay_set_and_counts_it(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    queued(fake_redis, "d")
    fake_redis.zadd(keys.DELAYED, {"d": 5000.0})
    jobstore.transition(fake_redis, "d", State.DELAYED, now=2.0)
    assert cancel(fake_redis, "d") == [State.DELAYED]
    assert fake_redis.zscore(keys.DELAYED, "d") is None
    counts = jobstore.counts(fake_redis)
    assert (counts["delayed"], counts["cancelled"]) == (0, 1)
    assert ids(fake_redis, states=[State.CANCELLED]) == ["d"]
    assert 0 < fake_redis.ttl(keys.job("d")) <= DAY  # expires like a finished job


def test_cancel_releases_a_job_held_by_an_open_breaker(fake_redis: fakeredis.FakeRedis) -> None:
    breaker = Breaker(fake_redis, "s1", keys.REALTIME)
    breaker.open("probe", "account-level", LastOutcome("pause", "test"), 1.0, 300)
    queued(fake_redis, "held")
    with fake_redis.pipeline() as pipe:
        breaker.hold(pipe, "held", 2.0)
        jobstore.transition(pipe, "held", State.PAUSED, now=2.0)
        pipe.execute()
    assert cancel(fake_redis, "held") == [State.PAUSED]
    assert breaker.state()["held"] == 0  # type: ignore[index]


def test_cancel_refuses_running_finished_and_unknown_jobs_each_with_its_reason(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    for job_id in ("running", "done", "ok"):
        queued(fake_redis, job_id)
    jobstore.transition(fake_redis, "running", State.RUNNING, now=2.0)
    fake_redis.set(keys.lease("running"), "w1:1:running:x", px=6000)
    jobstore.transition(fake_redis, "done", State.DONE, now=2.0, keep_seconds=DAY)
    running, done, unknown, ok = cancel(fake_redis, "running", "done", "nope", "ok")
    assert isinstance(running, NotCancellable) and "is running" in str(running)
    assert isinstance(done, NotCancellable) and str(done) == (
        "job done is done already: too late to cancel"
    )
    assert isinstance(unknown, NotFound) and "no job nope" in str(unknown)
    assert ok == State.QUEUED
    assert jobstore.state_of(fake_redis, "running") == State.RUNNING


def test_a_running_job_whose_worker_died_can_be_cancelled(fake_redis: fakeredis.FakeRedis) -> None:
    queued(fake_redis, "r")
    jobstore.transition(fake_redis, "r", State.RUNNING, now=2.0)  # no lease: its worker is gone
    assert cancel(fake_redis, "r") == [State.RUNNING]


def test_a_cancelled_job_stays_cancelled_whatever_writes_its_state_late(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    queued(fake_redis, "c")
    assert cancel(fake_redis, "c") == [State.QUEUED]
    assert cancel(fake_redis, "c") == [State.CANCELLED]  # again: nothing to do
    moved = jobstore.transition(fake_redis, "c", State.RUNNING, now=200.0)
    assert moved == (State.CANCELLED, 0)
    assert jobstore.state_of(fake_redis, "c") == State.CANCELLED
    assert ids(fake_redis, states=[State.RUNNING]) == []
    assert jobstore.counts(fake_redis)["running"] == 0


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Producer:
    return Producer(Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)))


def test_enqueued_and_scheduled_jobs_are_listed_with_their_due_time(
    producer: Producer, real_redis: redis.Redis
) -> None:
    due = time.time() + 3600
    now_id = producer.pool_update(POOL)
    later_id = producer.callback(CALLBACK, not_before=due)
    assert ids(real_redis, states=[State.QUEUED]) == [now_id]
    [later] = list_jobs(real_redis, states=[State.DELAYED])
    assert (later.id, later.kind, later.due_at) == (later_id, "callback", pytest.approx(due))


def test_a_cancelled_scheduled_job_is_never_moved_back_to_its_queue(
    producer: Producer, real_redis: redis.Redis
) -> None:
    job_id = producer.callback(CALLBACK, not_before=time.time() + 3600)
    assert cancel(real_redis, job_id) == [State.DELAYED]
    builder = MessageBuilder(producer.app)
    try:
        assert move_due(real_redis, builder, time.time() + 7200) == 0
    finally:
        builder.close()
    assert real_redis.llen(keys.REALTIME) == 0
    assert jobstore.state_of(real_redis, job_id) == State.CANCELLED
