"""The fences of a failover (worker.failover): a job's lease must reach a replica of the
primary before its request leaves, and an enqueue must reach it before it is accepted;
checked on real redis-servers, a primary and its replica."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from config import Settings
from tasks import producer as producer_module
from tasks.producer import Producer, QueueUnavailable
from tasks.validation import JobValidationError, Problems
from tests.helpers import RedisServer, free_port, wait_for
from worker import failover, jobstore, keys
from worker.failover import NotReplicated, point_at_primary
from worker.lease import Lease


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    primary = RedisServer(free_port(), tmp_path / "primary")
    replica = RedisServer(free_port(), tmp_path / "replica")
    for server in (primary, replica):
        server.directory.mkdir()
    primary.start()
    replica.start("--replicaof", "127.0.0.1", str(primary.port))
    to_primary = redis.Redis(port=primary.port, decode_responses=True)
    to_replica = redis.Redis(port=replica.port, decode_responses=True)
    wait_for(lambda: to_replica.info("replication")["master_link_status"] == "up", timeout=10)
    yield to_primary, to_replica
    to_primary.close()
    to_replica.close()
    replica.stop()
    primary.stop()


def held(client: redis.Redis) -> Lease:
    lease = Lease(client, "job-1", seconds=30)
    assert lease.acquire()
    return lease


def test_a_lease_a_replica_confirms_lets_the_request_go(
    primary_and_replica: tuple[redis.Redis, redis.Redis],
) -> None:
    primary, replica = primary_and_replica
    lease = held(primary)
    primary.pexpire(lease.name, 1000)
    assert lease.renew(1)
    assert replica.pttl(lease.name) > 25_000  # the renewal itself reached the replica
    with pytest.raises(NotReplicated):
        lease.renew(2)  # a second replica that is not there does not confirm


def test_a_promoted_replica_stops_the_request_and_says_why(
    primary_and_replica: tuple[redis.Redis, redis.Redis],
) -> None:
    primary, replica = primary_and_replica
    lease = held(primary)
    replica.replicaof("NO", "ONE")  # the first step of a failover: the old primary is alone
    with pytest.raises(NotReplicated, match=r"Redis is failing over.*nothing was sent"):
        lease.renew(1)
    assert isinstance(NotReplicated(), redis.ConnectionError)  # ridden out like an outage
    assert pickle.loads(pickle.dumps(NotReplicated())).args == NotReplicated().args


def test_a_lease_taken_over_is_reported_lost_and_stays_lost(
    primary_and_replica: tuple[redis.Redis, redis.Redis],
) -> None:
    primary, _ = primary_and_replica
    lease = held(primary)
    primary.set(lease.name, "another-worker")
    assert not lease.renew(1)
    assert lease.lost
    primary.set(lease.name, lease.owner)  # lost once is lost: the heartbeat said so
    assert not lease.renew(1)
    assert not Lease(primary, "job-2", seconds=30).renew(1)  # never acquired


def test_without_sentinel_there_is_nothing_to_confirm(real_redis: redis.Redis) -> None:
    assert point_at_primary(real_redis) == 0
    lease = held(real_redis)
    assert lease.renew(0)  # a plain renewal: no WAIT on a server without replicas


@pytest.fixture
def fenced_producer(
    primary_and_replica: tuple[redis.Redis, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Producer]:
    """A producer of the primary that, as the sentinels would say, has one replica following
    it (which replicas count is ``_following``'s test), and tries to confirm for 1 s."""

    async def one_replica(client: object) -> int:
        return 1

    monkeypatch.setattr(failover, "point_at_primary", lambda client: 1)
    monkeypatch.setattr(failover, "point_at_primary_async", one_replica)
    monkeypatch.setattr(producer_module, "CONFIRM_SECONDS", 1.0)
    primary, _ = primary_and_replica
    port = primary.connection_pool.connection_kwargs["port"]
    url = f"redis://127.0.0.1:{port}/0"
    producer = Producer(Settings(_env_file=None, REDIS_URL=url, CTQ_DATA_DIR=str(tmp_path)))
    yield producer
    producer.close()


CALLBACK = {"routeKey": "rk", "phone": "79991234567"}
NOT_KNOWN = r"could not be asked whether they were enqueued\. Running the same input again"


def test_an_enqueue_is_accepted_once_its_replica_has_it_and_not_after_a_promotion(
    primary_and_replica: tuple[redis.Redis, redis.Redis], fenced_producer: Producer
) -> None:
    _, replica = primary_and_replica
    job_id = fenced_producer.callback(CALLBACK)
    assert jobstore.load(replica, job_id) is not None  # on the replica when accepted
    replica.replicaof("NO", "ONE")  # promoted: what the primary takes now may be thrown away
    with pytest.raises(QueueUnavailable, match=NOT_KNOWN):
        fenced_producer.callback({**CALLBACK, "phone": "79991234568"})


def test_leads_are_staged_once_the_replica_has_them_and_not_after_a_promotion(
    primary_and_replica: tuple[redis.Redis, redis.Redis], fenced_producer: Producer
) -> None:
    _, replica = primary_and_replica
    lead = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": "paid"}
    assert fenced_producer.stage_comments([lead] * 3) == 3
    assert replica.llen(keys.STAGED_COMMENTS) == 3
    replica.replicaof("NO", "ONE")
    with pytest.raises(QueueUnavailable, match="could not be asked whether they were staged"):
        fenced_producer.stage_comments([lead] * 2)


def test_an_enqueue_over_http_is_fenced_the_same_way(
    primary_and_replica: tuple[redis.Redis, redis.Redis], fenced_producer: Producer
) -> None:
    _, replica = primary_and_replica

    async def enqueue(phone: str) -> list[str] | None:
        client = redis.asyncio.Redis.from_url(fenced_producer.url, decode_responses=True)
        builder = fenced_producer.message_builder()
        try:
            items = [(1, {**CALLBACK, "phone": phone})]
            answer = await fenced_producer.from_items_at_once(
                client, builder, "callback", items, Problems()
            )
            return None if answer is None else list(answer)
        finally:
            builder.close()
            await client.aclose()

    accepted = asyncio.run(enqueue("79991234567"))
    assert accepted and jobstore.load(replica, accepted[0]) is not None
    replica.replicaof("NO", "ONE")
    with pytest.raises(QueueUnavailable, match=NOT_KNOWN):
        asyncio.run(enqueue("79991234568"))


def test_a_receipt_its_replica_does_not_confirm_does_not_count(
    primary_and_replica: tuple[redis.Redis, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = primary_and_replica
    monkeypatch.setattr(failover, "point_at_primary", lambda client: 1)
    primary.set("receipt", "job-1", ex=600)
    assert failover.confirmed_read(primary, "receipt", 600) == "job-1"
    assert failover.confirmed_read(primary, "no-receipt", 600) is None
    replica.replicaof("NO", "ONE")
    with pytest.raises(NotReplicated):
        failover.confirmed_read(primary, "receipt", 600)
    assert failover.confirmed_read(primary, "no-receipt", 600) is None  # nothing to doubt


def test_a_script_refused_in_the_fenced_pipeline_is_the_refusal(
    primary_and_replica: tuple[redis.Redis, redis.Redis],
) -> None:
    _, replica = primary_and_replica
    with pytest.raises(redis.ReadOnlyError) as refused:  # ridden out like any failover refusal
        failover.run_confirmed(replica, "pause", ["p", "s", "m"], [1000, 0, 1000], replicas=1)
    assert "pipeline" not in str(refused.value)  # Redis's words, not the command's


def test_a_refused_enqueue_is_the_refusal_even_when_no_replica_confirms(
    primary_and_replica: tuple[redis.Redis, redis.Redis], fenced_producer: Producer
) -> None:
    _, replica = primary_and_replica
    fenced_producer.callback(CALLBACK, idempotency_key="order-1")
    replica.replicaof("NO", "ONE")
    # The commit wrote nothing: there is nothing a failover could lose, only the conflict.
    with pytest.raises(JobValidationError, match="order-1"):
        fenced_producer.callback({**CALLBACK, "phone": "79991234568"}, idempotency_key="order-1")


def _replica(flags: str = "slave", link: str = "ok", role: str = "slave") -> dict[str, object]:
    return {
        "flags": flags,
        "is_sdown": "s_down" in flags,
        "is_odown": "o_down" in flags,
        "master-link-status": link,
        "role-reported": role,
    }


@pytest.mark.parametrize(
    ("replica", "follows"),
    [
        (_replica(), True),
        (_replica(flags="slave,promoted"), True),  # being promoted: the fence must hold
        (_replica(flags="slave,promoted", role="master"), True),  # whatever it reports
        (_replica(flags="slave,s_down"), False),  # down: nothing to confirm with
        (_replica(link="err", role="master"), False),  # the old primary, not yet demoted
        (_replica(link="err"), False),  # lost its link: it would never confirm
    ],
)
def test_which_replicas_must_confirm(replica: dict[str, object], follows: bool) -> None:
    assert failover._following(replica) is follows
