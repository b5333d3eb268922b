"""The counters behind /metrics and the dashboard, as the workers keep them in Redis."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import fakeredis
import requests

from config import Settings
from tasks import callback
from worker import jobstore, keys, metrics
from worker.ledger import Ledger
from worker.runner import run_job
from worker.runtime import Runtime, build_limiter


def answer(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"data": {}}).encode()
    return response


class CannedApi:
    def __init__(self, *answers: requests.Response) -> None:
        self.answers = list(answers)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.answers.pop(0)

    def after(self, verdict: Any) -> bool:
        return False


def runtime(client: fakeredis.FakeRedis, *answers: requests.Response) -> Runtime:
    settings = Settings(_env_file=None, CALLTOUCH_SITE_ID="s1", CTQ_BACKOFF_BASE=0.01)
    return Runtime(
        settings=settings,
        redis=client,
        calltouch=CannedApi(*answers),  # type: ignore[arg-type]
        limiter=build_limiter(settings, client),
        ledger=Ledger(client, settings, clock=lambda: 1_795_000_000.0),
        rng=random.Random(0),
        sleep=lambda seconds: None,
    )


def test_every_request_a_job_sends_is_counted_by_outcome_with_its_permit(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    rt = runtime(fake_redis, answer(503), answer(429), answer(200))
    fake_redis.hset(
        keys.job("j1"),
        mapping=jobstore.new_fields("callback", "realtime", {"routeKey": "r", "phone": "1"}, 1.0),
    )
    assert run_job(rt, callback.KIND, "j1") == jobstore.State.DONE

    assert metrics.requests_sent(fake_redis) == {
        ("calltouch", "callback", "retry"): 2,
        ("calltouch", "callback", "done"): 1,
    }
    waits = metrics.permit_waits(fake_redis)
    assert waits["realtime"].count == 3 and waits["realtime"].buckets[-1] == (math.inf, 3)
    assert waits["bulk"].count == 0
    seconds, micros = fake_redis.time()
    used = metrics.permits_per_second(fake_redis, rt.limiter.key, seconds * 1_000_000 + micros)
    assert len(used) == metrics.HISTORY_SECONDS and sum(used) == 3
    # Only the request that succeeded spent its point.
    assert sum(metrics.points_spent_at(fake_redis, rt.ledger.key()).values()) == 1


def test_permit_wait_buckets_are_cumulative_and_sum_the_waits(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    for waited in (0.001, 0.2, 0.2, 7.0, 500.0):
        metrics.record_sent(fake_redis, sent(waited=waited))
    waits = metrics.permit_waits(fake_redis)["bulk"]
    by_bound = dict(waits.buckets)
    assert (by_bound[0.005], by_bound[0.25], by_bound[5.0], by_bound[10.0]) == (1, 3, 3, 4)
    assert by_bound[math.inf] == waits.count == 5
    assert math.isclose(waits.sum, 507.401)


def test_permits_per_second_covers_the_last_15_minutes_across_minute_keys(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    now = 1_795_000_000  # a whole minute: the series spans 16 minute keys
    for second in (now - 900, now - 899, now - 61, now - 59, now, now):
        metrics.record_sent(fake_redis, sent(slot_us=second * 1_000_000))
    used = metrics.permits_per_second(fake_redis, "ctq:limiter:x", now * 1_000_000 + 5)
    assert len(used) == 900
    assert used[0] == 1  # now - 899; now - 900 is out of the window
    assert (used[-1], used[-60], used[-62]) == (2, 1, 1)
    assert sum(used) == 5
    assert 0 < fake_redis.ttl(keys.permits_used("ctq:limiter:x", now // 60)) <= 1020


def test_points_spent_are_kept_per_10_minutes_of_the_site_day(
    fake_redis: fakeredis.FakeRedis,
) -> None:
    start = 1_795_000_200  # a 10-minute boundary
    for moment, points in ((start + 5, 1), (start + 599, 2), (start + 600, 4)):
        metrics.record_sent(fake_redis, sent(slot_us=moment * 1_000_000, points=points))
    metrics.record_sent(fake_redis, sent(slot_us=start * 1_000_000, points=0))
    assert metrics.points_spent_at(fake_redis, "ctq:points:s1:day") == {start: 3, start + 600: 4}


def test_a_token_request_is_counted_without_a_permit(fake_redis: fakeredis.FakeRedis) -> None:
    metrics.count_request(fake_redis, "pozvonim", "token", "done")
    assert metrics.requests_sent(fake_redis) == {("pozvonim", "token", "done"): 1}
    assert metrics.permit_waits(fake_redis)["realtime"].count == 0


def sent(
    waited: float = 0.0, slot_us: int = 1_795_000_000_000_000, points: int = 0
) -> metrics.Sent:
    return metrics.Sent(
        "calltouch",
        "comment",
        "done",
        "bulk",
        "ctq:limiter:x",
        slot_us,
        waited,
        "ctq:points:s1:day",
        points,
    )
