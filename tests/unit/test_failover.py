"""The fence before a request leaves (worker.failover): the job's lease must reach a replica
of the primary, checked on real redis-servers, a primary and its replica."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import RedisServer, free_port, wait_for
from worker import failover
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
