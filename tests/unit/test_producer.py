"""Enqueueing writes job records and Celery messages together, or nothing at all."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis

from config import Settings
from scheduler.delay_mover import move_due
from tasks.producer import Producer, QueueUnavailable
from tasks.replay import replay, select
from tasks.validation import JobValidationError
from tests.helpers import free_port
from worker import deadletter, jobstore, keys
from worker.messages import MessageBuilder

LEAD = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": "c"}


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Producer:
    return Producer(Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)))


def task_messages(client: redis.Redis, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_a_callback_gets_a_record_and_a_message_on_the_realtime_queue(
    producer: Producer, real_redis: redis.Redis
) -> None:
    job_id = producer.callback({"routeKey": "rk", "phone": "79991234567"})
    job = jobstore.load(real_redis, job_id)
    assert job and (job.kind, job.lane, job.state) == ("callback", "realtime", "queued")
    assert job.payload == {"routeKey": "rk", "phone": "79991234567"}
    [message] = task_messages(real_redis, keys.REALTIME)
    assert message["headers"]["task"] == "ctq.callback" and message["headers"]["id"] == job_id
    assert jobstore.counts(real_redis)["queued"] == 1


def test_leads_are_packed_100_per_request_in_order(
    producer: Producer, real_redis: redis.Redis
) -> None:
    leads = [{**LEAD, "addComment": f"lead {i}"} for i in range(250)]
    job_ids = producer.comments(leads)
    sizes = [len(jobstore.load(real_redis, j).payload["comments"]) for j in job_ids]  # type: ignore[union-attr]
    assert sizes == [100, 100, 50]
    assert jobstore.load(real_redis, job_ids[2]).payload["comments"][-1]["addComment"] == "lead 249"  # type: ignore[union-attr]
    assert real_redis.llen(keys.BULK) == 3


def test_one_bad_lead_refuses_the_whole_input(producer: Producer, real_redis: redis.Redis) -> None:
    leads = [LEAD] * 150 + [{**LEAD, "addComment": ""}]
    with pytest.raises(JobValidationError) as caught:
        producer.comments(leads)
    assert [str(p) for p in caught.value.problems] == [
        "line 151: addComment: String should have at least 1 character"
    ]
    assert real_redis.dbsize() == 0


def test_unreachable_redis_raises_and_enqueues_nothing(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", CTQ_DATA_DIR=str(tmp_path)
    )
    with pytest.raises(QueueUnavailable, match="nothing was enqueued"):
        Producer(settings).callback({"routeKey": "rk", "phone": "79991234567"})


def test_due_jobs_move_back_to_their_queue_once(
    producer: Producer, real_redis: redis.Redis
) -> None:
    job_id = producer.callback({"routeKey": "rk", "phone": "79991234567"})
    real_redis.delete(keys.REALTIME)
    real_redis.zadd(keys.DELAYED, {job_id: 100.0})
    builder = MessageBuilder(producer.app)
    assert move_due(real_redis, builder, now=99.0) == 0
    assert move_due(real_redis, builder, now=100.0) == 1
    assert move_due(real_redis, builder, now=200.0) == 0
    [message] = task_messages(real_redis, keys.REALTIME)
    assert message["headers"]["id"] == job_id
    assert real_redis.zcard(keys.DELAYED) == 0
    builder.close()


def test_the_same_key_enqueues_once_and_returns_the_first_job_id(
    producer: Producer, real_redis: redis.Redis
) -> None:
    body = {"phoneNumber": "74950000001", "poolName": "p"}
    first = producer.pool_update(body, idempotency_key="order-17")
    again = producer.pool_update(dict(body), idempotency_key="order-17")
    assert again == first
    assert real_redis.llen(keys.REALTIME) == 1
    assert producer.pool_update(body) != producer.pool_update(body)  # no key: two jobs


def test_a_key_reused_for_a_different_payload_is_refused(
    producer: Producer, real_redis: redis.Redis
) -> None:
    body = {"phoneNumber": "74950000001", "poolName": "p"}
    first = producer.pool_update(body, idempotency_key="order-17")
    with pytest.raises(JobValidationError) as refused:
        producer.pool_update({**body, "poolName": "other"}, idempotency_key="order-17")
    assert str(refused.value) == (
        "line 1: (idempotency key): 'order-17' was used within CTQ_IDEMPOTENCY_WINDOW for a "
        f"different payload (job {first}); use a new key for a new job"
    )
    assert real_redis.llen(keys.REALTIME) == 1


def test_the_same_input_sent_again_enqueues_nothing_new_but_identical_lines_stay_jobs(
    producer: Producer, real_redis: redis.Redis
) -> None:
    line = '{"phoneNumber": "74950000001", "poolName": "p"}\n'
    first = producer.from_json_lines("pool-update", line * 2)
    assert len(set(first)) == 2 and first.reused == 0  # two lines, two jobs
    again = producer.from_json_lines("pool-update", line * 3)
    assert again[:2] == first and again.reused == 2  # the third line is new
    assert real_redis.llen(keys.REALTIME) == 3


def test_an_identical_callback_within_the_window_is_enqueued_once(
    producer: Producer, real_redis: redis.Redis
) -> None:
    body = {"routeKey": "rk", "phone": "79991234567"}
    assert producer.callback(body) == producer.callback(dict(body))
    assert producer.callback({**body, "phone": "79991234568"}) != producer.callback(body)
    assert real_redis.llen(keys.REALTIME) == 2
    lines = (
        '{"routeKey": "rk", "phone": "79991234567"}\n{"routeKey": "rk", "phone": "79991234567"}\n'
    )
    assert len(set(producer.from_json_lines("callback", lines))) == 1


def test_scheduled_jobs_wait_in_the_durable_delay_set(
    producer: Producer, real_redis: redis.Redis
) -> None:
    job_id = producer.pool_update({"phoneNumber": "74950000001", "poolName": "p"}, not_before=2e9)
    assert real_redis.llen(keys.REALTIME) == 0
    assert real_redis.zscore(keys.DELAYED, job_id) == 2e9
    assert jobstore.load(real_redis, job_id).state == "delayed"  # type: ignore[union-attr]


def test_replay_refuses_a_payload_that_no_longer_validates(
    producer: Producer, real_redis: redis.Redis
) -> None:
    good = {"id": "old1", "kind": "callback", "payload": {"routeKey": "rk", "phone": "79991234567"}}
    bad = {"id": "old2", "kind": "callback", "payload": {"routeKey": "", "phone": "79991234567"}}
    for record in (good, bad):
        deadletter.add(real_redis, record, now=1.0)
    result = replay(producer, deadletter.all_records(real_redis))
    assert list(result.enqueued) == ["old1"]
    assert [str(p) for p in result.refused["old2"]] == [
        "line 1: routeKey: String should have at least 1 character"
    ]
    assert [r["id"] for r in deadletter.all_records(real_redis)] == ["old2"]
    assert select(deadletter.all_records(real_redis), [], code=None)[0]["id"] == "old2"


def test_a_dead_letter_purged_while_a_replay_ran_is_reported_gone_and_not_enqueued(
    producer: Producer, real_redis: redis.Redis
) -> None:
    kept = {"id": "old1", "kind": "callback", "payload": {"routeKey": "rk", "phone": "79991234567"}}
    purged = {**kept, "id": "old2", "payload": {"routeKey": "rk", "phone": "79991234568"}}
    for record in (kept, purged):
        deadletter.add(real_redis, record, now=1.0)
    chosen = deadletter.all_records(real_redis)
    deadletter.remove(real_redis, ["old2"])  # by `ctq dlq purge`, after the replay chose it
    result = replay(producer, chosen)
    assert (list(result.enqueued), result.gone) == (["old1"], ["old2"])
    assert real_redis.llen(keys.REALTIME) == 1


def sent_events(pubsub: redis.client.PubSub) -> list[dict]:
    """The task-sent events published so far, as Flower decodes them."""
    events = []
    while message := pubsub.get_message(timeout=0.5):
        if message["type"] == "pmessage":
            envelope = json.loads(message["data"])
            events.append(json.loads(base64.b64decode(envelope["body"])))
    return events


def test_each_job_queued_publishes_one_task_sent_event_for_flower(
    producer: Producer, real_redis: redis.Redis
) -> None:
    pubsub = real_redis.pubsub()
    pubsub.psubscribe("*celeryev/task.sent")
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    first = producer.pool_update(
        {"phoneNumber": "74950000001", "poolName": "p"}, idempotency_key="o1"
    )
    again = producer.pool_update(
        {"phoneNumber": "74950000001", "poolName": "p"}, idempotency_key="o1"
    )
    later = producer.callback({"routeKey": "rk", "phone": "79991234567"}, not_before=4e9)
    assert again == first  # enqueued once: one event
    [event] = sent_events(pubsub)
    assert event["type"] == "task-sent" and event["uuid"] == first
    assert (event["name"], event["queue"]) == ("ctq.pool_update", keys.REALTIME)
    assert event["kwargs"] == repr({"job_id": first})

    builder = MessageBuilder(producer.app)
    assert move_due(real_redis, builder, now=4e9) == 1  # the delayed job's turn comes
    builder.close()
    [event] = sent_events(pubsub)
    assert (event["uuid"], event["name"]) == (later, "ctq.callback")

    producer.app.conf.task_send_sent_event = False
    with Producer(producer.settings, app=producer.app) as quiet:
        quiet.callback({"routeKey": "rk", "phone": "79991234568"})
    assert sent_events(pubsub) == []
    pubsub.close()
