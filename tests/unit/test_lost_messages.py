"""Finding jobs whose message was taken from its queue and never recorded, on a real Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config import Settings
from tasks.producer import Producer
from worker import delays, jobstore, keys
from worker.jobstore import State
from worker.lost_messages import (
    TASK_ID,
    Candidate,
    LostMessageSweep,
    find_lost,
    requeue_lost,
)
from worker.messages import MessageBuilder


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Iterator[Producer]:
    with Producer(Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path))) as p:
        yield p


@pytest.fixture
def builder(producer: Producer) -> Iterator[MessageBuilder]:
    made = MessageBuilder(producer.app)
    yield made
    made.close()


def callbacks(producer: Producer, count: int) -> list[str]:
    """``count`` callbacks enqueued, oldest first (the first is the next a worker takes)."""
    lines = "\n".join(json.dumps({"routeKey": "rk", "phone": f"7999{n:07d}"}) for n in range(count))
    return list(producer.from_json_lines("callback", lines))


def job_of(raw: str) -> str:
    return str(json.loads(raw)["headers"]["id"])


def take(client: redis.Redis, queue: str = keys.REALTIME) -> str:
    """Take the next message as a worker does (``BRPOP``): the job id of the message."""
    raw = client.rpop(queue)
    assert raw is not None
    return job_of(str(raw))


def record_unacked(client: redis.Redis, raw: str, queue: str = keys.REALTIME) -> None:
    """What kombu writes once a worker has taken a message."""
    tag = uuid.uuid4().hex
    client.hset(keys.KOMBU_UNACKED, tag, json.dumps([json.loads(raw), "", queue]))
    client.zadd(keys.KOMBU_UNACKED_INDEX, {tag: time.time()})


def everything_older() -> float:
    """A cutoff every job enqueued so far is older than (CTQ_LOST_MESSAGE_AFTER has passed)."""
    return time.time() + 1


def test_a_message_taken_and_never_recorded_is_replaced_at_the_head_of_its_queue(
    producer: Producer, builder: MessageBuilder, real_redis: redis.Redis
) -> None:
    first, second, third = callbacks(producer, 3)
    assert take(real_redis) == first  # its reply never reached the worker

    cutoff = everything_older()
    lost = find_lost(real_redis, cutoff)
    assert lost == [Candidate(first, "ctq.callback", keys.REALTIME)]
    assert requeue_lost(real_redis, builder, lost, cutoff) == 1

    assert [take(real_redis) for _ in range(3)] == [first, second, third]
    assert jobstore.state_of(real_redis, first) == State.QUEUED


def test_a_replaced_message_is_one_a_worker_runs(
    producer: Producer, builder: MessageBuilder, real_redis: redis.Redis
) -> None:
    [job_id] = callbacks(producer, 1)
    original: dict[str, Any] = json.loads(str(real_redis.rpop(keys.REALTIME)))
    cutoff = everything_older()
    requeue_lost(real_redis, builder, find_lost(real_redis, cutoff), cutoff)
    replaced: dict[str, Any] = json.loads(str(real_redis.rpop(keys.REALTIME)))
    assert replaced["headers"]["task"] == original["headers"]["task"] == "ctq.callback"
    assert replaced["headers"]["id"] == job_id
    assert json.loads(replaced["headers"]["kwargsrepr"].replace("'", '"')) == {"job_id": job_id}
    assert replaced["properties"]["delivery_info"]["routing_key"] == keys.REALTIME


def test_a_queued_message_names_its_job_where_the_sweep_looks_without_parsing_it(
    producer: Producer, real_redis: redis.Redis
) -> None:
    [job_id] = callbacks(producer, 1)
    raw = str(real_redis.lindex(keys.REALTIME, 0))
    found = TASK_ID.search(raw)  # a long backlog is read every sweep: no JSON parse per message
    assert found is not None and found.group(1) == job_id == job_of(raw)


def test_no_job_is_lost_while_its_message_is_queued_unacked_or_not_needed(
    producer: Producer, real_redis: redis.Redis
) -> None:
    job_ids = callbacks(producer, 1_200)  # more than one read of the queue
    running = real_redis.rpop(keys.REALTIME)
    record_unacked(real_redis, str(running))
    leased = take(real_redis)
    real_redis.set(keys.lease(leased), "host:1:job:nonce", px=6000)
    parked = take(real_redis)
    delays.park(real_redis, parked, time.time() + 60)
    finished = take(real_redis)
    jobstore.transition(real_redis, finished, State.DONE, keep_seconds=60)

    # Every job a candidate (they share one time: the first 1000 by id would be a sample).
    assert find_lost(real_redis, everything_older(), limit=2_000) == []
    assert len(job_ids) == 1_200


def test_a_job_younger_than_the_cutoff_is_not_lost_yet(
    producer: Producer, real_redis: redis.Redis
) -> None:
    callbacks(producer, 2)
    take(real_redis)
    assert find_lost(real_redis, time.time() - 30) == []


def drop_message(client: redis.Redis, job_id: str, queue: str = keys.REALTIME) -> None:
    """Remove ``job_id``'s message from its queue: taken by a worker whose reply was lost."""
    for raw in client.lrange(queue, 0, -1):
        if job_of(str(raw)) == job_id:
            client.lrem(queue, 1, raw)
            return
    raise AssertionError(f"no message of {job_id}")


def in_sweep_order(client: redis.Redis) -> list[str]:
    """The queued jobs in the order the sweep pages through them."""
    return [str(job_id) for job_id in client.zrange(keys.jobs_in(State.QUEUED), 0, -1)]


def test_a_lost_job_behind_more_jobs_than_a_sweep_looks_at_is_found_within_a_round(
    producer: Producer, real_redis: redis.Redis
) -> None:
    callbacks(producer, 25)  # a backlog queued before it, longer than a sweep's page of 10
    time.sleep(0.01)
    [newest] = producer.from_json_lines("callback", '{"routeKey": "rk", "phone": "79980000000"}')
    drop_message(real_redis, newest)

    cutoff = everything_older()
    sweeps = [find_lost(real_redis, cutoff, limit=10, oldest=0) for _ in range(4)]

    # Jobs 1-10, 11-20, then 21-26 with the lost one; then from the oldest again.
    assert sweeps == [[], [], [Candidate(newest, "ctq.callback", keys.REALTIME)], []]


def test_jobs_that_leave_ahead_of_the_sweep_do_not_make_it_skip_a_lost_one(
    producer: Producer, real_redis: redis.Redis
) -> None:
    callbacks(producer, 40)
    order = in_sweep_order(real_redis)
    lost = order[12]
    drop_message(real_redis, lost)
    cutoff = everything_older()

    assert find_lost(real_redis, cutoff, limit=10, oldest=0) == []  # jobs 1-10
    for done in order[:5]:  # the backlog drains meanwhile: every later job moves up 5
        jobstore.transition(real_redis, done, State.DONE, keep_seconds=60)

    assert find_lost(real_redis, cutoff, limit=10, oldest=0) == [
        Candidate(lost, "ctq.callback", keys.REALTIME)
    ]


def test_the_oldest_jobs_are_looked_at_every_sweep_wherever_the_page_is(
    producer: Producer, real_redis: redis.Redis
) -> None:
    callbacks(producer, 30)
    cutoff = everything_older()
    assert find_lost(real_redis, cutoff, limit=10, oldest=5) == []  # the oldest 5, then 6-15
    lost = in_sweep_order(real_redis)[2]
    drop_message(real_redis, lost)  # lost after its page went by

    assert find_lost(real_redis, cutoff, limit=10, oldest=5) == [
        Candidate(lost, "ctq.callback", keys.REALTIME)
    ]


class WorkersDraining(redis.Redis):
    """A client during whose every read of a queue workers take 60 messages from it."""

    def lrange(self, name: str, start: int, end: int) -> Any:
        chunk = super().lrange(name, start, end)
        for _ in range(60):
            raw = self.rpop(name)
            if raw is not None:
                record_unacked(self, str(raw), name)
        return chunk


def test_messages_taken_while_the_queue_is_read_are_not_taken_for_lost(
    producer: Producer, redis_url: str, real_redis: redis.Redis
) -> None:
    callbacks(producer, 1_500)
    draining = WorkersDraining.from_url(redis_url, decode_responses=True)
    try:
        assert find_lost(draining, everything_older()) == []
    finally:
        draining.close()
    assert real_redis.llen(keys.REALTIME) < 1_500 - 60  # they were taken meanwhile


class PutBackMeanwhile(redis.Redis):
    """A client during whose first read of a queue another worker's recovery puts a message
    back from the unacked onto that queue's head (``worker.recovery``)."""

    def lrange(self, name: str, start: int, end: int) -> Any:
        chunk = super().lrange(name, start, end)
        for tag, raw in dict(self.hgetall(keys.KOMBU_UNACKED)).items():
            self.hdel(keys.KOMBU_UNACKED, tag)
            self.rpush(name, json.dumps(json.loads(raw)[0]))
        return chunk


def test_a_message_put_back_from_the_unacked_while_the_queue_is_read_is_not_lost(
    producer: Producer, redis_url: str
) -> None:
    callbacks(producer, 3)
    client = PutBackMeanwhile.from_url(redis_url, decode_responses=True)
    try:
        record_unacked(client, str(client.rpop(keys.REALTIME)))  # its worker died
        assert find_lost(client, everything_older()) == []
    finally:
        client.close()


def test_a_job_settled_after_it_was_found_lost_gets_no_message(
    producer: Producer, builder: MessageBuilder, real_redis: redis.Redis
) -> None:
    [job_id] = callbacks(producer, 1)
    take(real_redis)
    cutoff = everything_older()
    lost = find_lost(real_redis, cutoff)
    jobstore.transition(real_redis, job_id, State.DONE, keep_seconds=60)
    assert requeue_lost(real_redis, builder, lost, cutoff) == 0
    assert real_redis.llen(keys.REALTIME) == 0


def test_one_process_sweeps_per_turn_across_the_cluster(
    producer: Producer, real_redis: redis.Redis
) -> None:
    first, second = callbacks(producer, 2)
    take(real_redis)
    one = LostMessageSweep(real_redis, lambda: MessageBuilder(producer.app), lost_after=30)
    other = LostMessageSweep(real_redis, lambda: MessageBuilder(producer.app), lost_after=30)

    assert one.run_if_due(time.time() + 31) == 1
    take(real_redis)
    take(real_redis)  # both taken again: the second is lost now too
    assert other.run_if_due(time.time() + 31) == 0  # not its turn: the first swept just now
    assert 0 < real_redis.pttl(keys.LOST_SWEEP) <= 10_000

    real_redis.delete(keys.LOST_SWEEP)  # the turn has passed
    assert other.run_if_due(time.time() + 31) == 2
    assert {take(real_redis), take(real_redis)} == {first, second}
