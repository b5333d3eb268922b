"""Large inputs stream: staged in chunks where no worker sees them, visible only at the commit
(real redis-server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config import Settings
from tasks import batch as batch_module
from tasks.batch import Batch, StagingExpired
from tasks.jobstream import fingerprint
from tasks.producer import Producer
from tasks.registry import KINDS
from tasks.staging import LeadStaging
from tasks.validation import PROBLEMS_KEPT, JobValidationError, Problems
from tests.helpers import wait_for
from worker import jobstore, keys
from worker.messages import MessageBuilder


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Iterator[Producer]:
    producer = Producer(Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)))
    yield producer
    producer.close()


def lead(n: int, comment: str | None = None) -> str:
    return json.dumps(
        {
            "matching": [{"type": "call", "callParams": {"callId": n}}],
            "addComment": f"lead {n}" if comment is None else comment,
        }
    )


def pool_update(n: int) -> dict[str, Any]:
    return {"phoneNumber": f"7495{n:07d}", "poolName": "p"}


def staged_keys(client: redis.Redis) -> list[str]:
    return sorted(client.keys("ctq:batch:*") + client.keys("ctq:staging:*"))  # type: ignore[operator]


def job_lists(client: redis.Redis) -> list[str]:
    """The staged job lists (``ctq:batch:ID``, not its payloads or messages)."""
    return [k for k in staged_keys(client) if k.count(":") == 2]


def visible(client: redis.Redis) -> dict[str, Any]:
    """What workers and `ctq status` see: queues, delayed jobs, records, keys, counters."""
    return {
        "queued": client.llen(keys.BULK) + client.llen(keys.REALTIME),  # type: ignore[operator]
        "delayed": client.zcard(keys.DELAYED),
        "records": len(client.keys("ctq:job:*")),  # type: ignore[arg-type]
        "idempotency keys": len(client.keys("ctq:idem:*")),  # type: ignore[arg-type]
        "stats": client.hgetall(keys.STATS),
    }


NOTHING = {"queued": 0, "delayed": 0, "records": 0, "idempotency keys": 0, "stats": {}}


def test_a_bad_line_at_the_end_of_a_large_input_leaves_nothing_visible(
    producer: Producer, real_redis: redis.Redis
) -> None:
    seen_while_reading: list[tuple[list[int], dict[str, Any]]] = []

    def lines() -> Iterator[str]:
        for n in range(1, 25_001):
            yield lead(n) + "\n"
        # 250 jobs are in: the first 200 staged by now, and none of them visible.
        staged = [real_redis.llen(k) for k in job_lists(real_redis)]
        seen_while_reading.append((staged, visible(real_redis)))  # type: ignore[arg-type]
        yield lead(25_001, comment="") + "\n"

    with pytest.raises(JobValidationError) as refused:
        producer.from_json_lines("comment", lines())
    assert [str(p) for p in refused.value.problems] == [
        "line 25001: addComment: String should have at least 1 character"
    ]
    assert seen_while_reading == [([200], NOTHING)]
    assert real_redis.dbsize() == 0  # discarded: no staging, no records, stats untouched


def test_a_commit_makes_every_staged_job_visible_at_once(
    producer: Producer, real_redis: redis.Redis
) -> None:
    real_redis.hset(keys.STATS, "queued", 7)  # jobs of earlier inputs
    builder = MessageBuilder(producer.app)
    batch = Batch(real_redis, builder, Problems(), window=60)
    for n in range(250):
        batch.add((KINDS["pool-update"], pool_update(n), f"order-{n}"))
    before = visible(real_redis)
    batch.flush()
    assert batch.staged == 250 and visible(real_redis) == before

    job_ids = batch.commit()
    builder.close()
    assert len(set(job_ids)) == 250 and job_ids.reused == 0
    queued = [json.loads(m)["headers"]["id"] for m in real_redis.lrange(keys.REALTIME, 0, -1)]
    assert queued[::-1] == job_ids  # LPUSH: the first job is consumed first
    assert jobstore.counts(real_redis)["queued"] == 257
    job = jobstore.load(real_redis, job_ids[249])
    assert job and (job.state, job.kind, job.payload) == ("queued", "pool-update", pool_update(249))
    assert real_redis.get(keys.idempotency("order-249")) == (
        f"{job_ids[249]} {fingerprint(pool_update(249))}"
    )
    assert 0 < real_redis.ttl(keys.idempotency("order-0")) <= 60
    assert staged_keys(real_redis) == [keys.batch_receipt(batch.id)]
    assert batch.confirm() == job_ids  # what a producer that lost the reply is told


def test_jobs_enqueued_for_later_are_parked_by_the_commit(
    producer: Producer, real_redis: redis.Redis
) -> None:
    lines = "".join(json.dumps(pool_update(n)) + "\n" for n in range(150))
    job_ids = producer.from_json_lines("pool-update", lines, not_before=2e9)
    assert real_redis.llen(keys.REALTIME) == 0
    assert real_redis.zrange(keys.DELAYED, 0, -1, withscores=True) == sorted(
        (job_id, 2e9) for job_id in job_ids
    )
    assert jobstore.counts(real_redis)["delayed"] == 150


def test_the_same_input_again_reuses_every_job_across_chunks(
    producer: Producer, real_redis: redis.Redis
) -> None:
    lines = "".join(json.dumps(pool_update(n % 120)) + "\n" for n in range(250))
    first = producer.from_json_lines("pool-update", lines)
    assert len(set(first)) == 250 and first.reused == 0  # repeated lines stay their own jobs
    again = producer.from_json_lines("pool-update", lines)
    assert again == first and again.reused == 250
    keyed = producer.from_json_lines("pool-update", lines, idempotency_key="imp")
    assert producer.from_json_lines("pool-update", lines, idempotency_key="imp") == keyed
    assert real_redis.exists(keys.idempotency("imp:250"))
    assert real_redis.llen(keys.REALTIME) == 500


def test_identical_callbacks_in_different_chunks_are_one_job(
    producer: Producer, real_redis: redis.Redis
) -> None:
    calls = [{"routeKey": "rk", "phone": f"7999{n:07d}"} for n in range(230)]
    calls[229] = calls[3]  # the same callback again, two chunks later
    job_ids = producer.from_json_lines("callback", "".join(json.dumps(c) + "\n" for c in calls))
    assert job_ids[229] == job_ids[3] and len(set(job_ids)) == 229 and job_ids.reused == 1
    assert real_redis.llen(keys.REALTIME) == 229 and jobstore.counts(real_redis)["queued"] == 229


def test_a_key_given_twice_in_one_input_is_one_job(
    producer: Producer, real_redis: redis.Redis
) -> None:
    body = KINDS["pool-update"].model.model_validate(pool_update(1))
    job_ids = producer.enqueue(KINDS["pool-update"], [body, body], ["order-1", "order-1"])
    assert job_ids[0] == job_ids[1] and job_ids.reused == 1
    assert real_redis.llen(keys.REALTIME) == 1 and len(real_redis.keys("ctq:job:*")) == 1  # type: ignore[arg-type]


def lines_then(count: int, meanwhile: Any) -> Iterator[str]:
    """``count`` pool-update lines; ``meanwhile()`` runs once all are read (before the
    commit) as another producer would."""
    for n in range(count):
        yield json.dumps(pool_update(n)) + "\n"
    meanwhile()


def test_a_key_taken_meanwhile_drops_the_job_and_answers_the_first_id(
    producer: Producer, real_redis: redis.Redis
) -> None:
    taken = keys.idempotency("imp:5")  # job 5 was staged with the first chunk
    stored = f"otherjob {fingerprint(pool_update(4))}"
    job_ids = producer.from_json_lines(
        "pool-update",
        lines_then(200, lambda: real_redis.set(taken, stored)),
        idempotency_key="imp",
    )
    assert job_ids[4] == "otherjob" and job_ids.reused == 1 and len(set(job_ids)) == 200
    assert real_redis.llen(keys.REALTIME) == 199 and jobstore.counts(real_redis)["queued"] == 199
    assert len(real_redis.keys("ctq:job:*")) == 199  # type: ignore[arg-type]
    assert real_redis.get(taken) == stored


def test_a_key_taken_meanwhile_for_another_payload_refuses_the_input(
    producer: Producer, real_redis: redis.Redis
) -> None:
    taken = keys.idempotency("imp:5")
    stored = f"otherjob {fingerprint({'phoneNumber': '74950000000', 'poolName': 'q'})}"
    with pytest.raises(JobValidationError) as refused:
        producer.from_json_lines(
            "pool-update",
            lines_then(200, lambda: real_redis.set(taken, stored)),
            idempotency_key="imp",
        )
    assert [str(p) for p in refused.value.problems] == [
        "line 5: (idempotency key): 'imp:5' was used within CTQ_IDEMPOTENCY_WINDOW for a "
        "different payload (job otherjob); use a new key for a new job"
    ]
    real_redis.delete(taken)
    assert real_redis.dbsize() == 0


def test_a_staging_area_left_behind_expires_and_cannot_be_committed_after(
    producer: Producer, real_redis: redis.Redis
) -> None:
    builder = MessageBuilder(producer.app)
    batch = Batch(real_redis, builder, Problems(), window=60, ttl=1)
    for n in range(100):
        batch.add((KINDS["pool-update"], pool_update(n), None))  # a full chunk: written
    assert len(staged_keys(real_redis)) == 4  # jobs, payloads, messages, task-sent events
    assert all(0 < real_redis.pttl(k) <= 1000 for k in staged_keys(real_redis))
    wait_for(lambda: real_redis.dbsize() == 0, timeout=5, interval=0.1)  # the producer died

    batch.add((KINDS["pool-update"], pool_update(100), None))
    with pytest.raises(StagingExpired):
        batch.commit()
    builder.close()
    assert visible(real_redis) == NOTHING

    leads = LeadStaging(real_redis, ttl=1)
    leads.read(((n, json.loads(lead(n))) for n in range(1, 1001)), Problems())
    assert 0 < real_redis.pttl(leads.key) <= 1000
    wait_for(lambda: real_redis.dbsize() == 0, timeout=5, interval=0.1)
    with pytest.raises(StagingExpired):
        leads.move()
    assert real_redis.dbsize() == 0


def test_chunks_are_written_as_the_input_is_read(
    producer: Producer, real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "CHUNK", 10)
    staged_after: list[int] = []

    def leads() -> Iterator[dict[str, Any]]:
        for n in range(1, 5_001):
            if n % 1_000 == 1:  # jobs staged so far: 10 jobs (1,000 leads) a chunk
                lists = job_lists(real_redis)
                staged_after.append(sum(real_redis.llen(k) for k in lists))  # type: ignore[misc]
            yield json.loads(lead(n))

    job_ids = producer.comments(leads())
    assert len(job_ids) == 50 and staged_after == [0, 10, 20, 30, 40]
    assert real_redis.llen(keys.BULK) == 50
    assert [k.rsplit(":", 1)[1] for k in staged_keys(real_redis)] == ["receipt"]


def test_leads_are_staged_in_order_onto_an_empty_or_a_filled_list(
    producer: Producer, real_redis: redis.Redis
) -> None:
    first = "".join(lead(n) + "\n" for n in range(1, 2_501))
    assert producer.stage_comment_lines(first) == 2_500  # RENAME onto the empty list
    assert real_redis.ttl(keys.STAGED_COMMENTS) == -1  # the staging list's TTL did not follow
    second = (json.loads(lead(n)) for n in range(2_501, 4_001))
    assert producer.stage_comments(second) == 4_000  # appended by the Lua loop
    staged = [
        json.loads(raw)["addComment"] for raw in real_redis.lrange(keys.STAGED_COMMENTS, 0, -1)
    ]
    assert staged == [f"lead {n}" for n in range(1, 4_001)]
    assert staged_keys(real_redis) == []


def test_a_bad_lead_at_the_end_stages_nothing(producer: Producer, real_redis: redis.Redis) -> None:
    real_redis.rpush(keys.STAGED_COMMENTS, lead(0))
    lines = "".join(lead(n) + "\n" for n in range(1, 3_001)) + "\n" + lead(3_001, comment="") + "\n"
    with pytest.raises(JobValidationError) as refused:
        producer.stage_comment_lines(lines)
    assert [str(p) for p in refused.value.problems] == [
        "line 3002: addComment: String should have at least 1 character"
    ]
    assert real_redis.lrange(keys.STAGED_COMMENTS, 0, -1) == [lead(0)]
    assert staged_keys(real_redis) == []


def test_problems_past_the_first_thousand_are_counted_not_kept(
    producer: Producer, real_redis: redis.Redis
) -> None:
    lines = "".join(lead(n, comment="" if n % 2 else None) + "\n" for n in range(1, 4_001))
    with pytest.raises(JobValidationError) as refused:
        producer.from_json_lines("comment", lines)
    assert len(refused.value.problems) == PROBLEMS_KEPT and refused.value.more == 1_000
    assert str(refused.value.problems[-1]).startswith("line 1999: addComment")
    assert str(refused.value).endswith("\nand 1000 more problem(s)")
    assert real_redis.dbsize() == 0
