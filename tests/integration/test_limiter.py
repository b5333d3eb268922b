"""The shared limiter and points ledger, on a real redis-server, from several processes."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import Settings
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from tests.integration import limiter_clients as clients
from worker import jobstore, keys
from worker.ledger import Ledger, day_of, next_reset
from worker.limiter import BULK_HORIZON_US, Booking, ComeBack, Permit

pytestmark = pytest.mark.integration

LIMIT = 20
WINDOW_US = 1_000_000


def over_the_limit(times: list[int], limit: int, window_us: int) -> list[tuple[int, int]]:
    """Pairs of times limit apart (limit+1 events) that fit in one window."""
    ordered = sorted(times)
    return [(a, b) for a, b in zip(ordered, ordered[limit:], strict=False) if b - a < window_us]


def pool() -> multiprocessing.pool.Pool:
    return multiprocessing.get_context("spawn").Pool(4)


def test_no_window_holds_more_than_the_limit_across_processes_with_skewed_clocks(
    redis_url: str,
) -> None:
    skews = [-3600.0, -0.5, 0.0, 7200.0]  # each process's wall clock is off by this much
    with pool() as workers:
        results = workers.starmap(
            clients.take_permits, [(redis_url, 25, skew, seed) for seed, skew in enumerate(skews)]
        )
    taken = [t for per_process in results for t in per_process]
    assert len(taken) == 100
    slots = [t["slot"] for t in taken]
    assert over_the_limit(slots, LIMIT, WINDOW_US + 10_000) == []
    # Nobody went ahead before its slot, and the whole run kept close to the rate.
    assert all(t["went"] >= t["slot"] for t in taken)
    assert over_the_limit([t["went"] for t in taken], LIMIT, WINDOW_US) == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(1, 10),
    margin_ms=st.integers(0, 50),
    lanes=st.lists(st.sampled_from(keys.LANES), min_size=1, max_size=40),
)
def test_booked_slots_never_exceed_the_limit_in_any_window(
    redis_url: str, limit: int, margin_ms: int, lanes: list[str]
) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    limiter = clients.make_limiter(redis_url, margin=margin_ms / 1000)
    limiter.limit = limit
    booked = []
    for n, lane in enumerate(lanes):
        status, slot, _ = limiter.book(lane, clients.NO_POINTS, f"m{n}")
        if status == Booking.BOOKED:
            booked.append(slot)
    assert over_the_limit(booked, limit, WINDOW_US + margin_ms * 1000) == []


def test_a_waiting_realtime_job_is_served_before_a_waiting_bulk_job(redis_url: str) -> None:
    limiter = clients.make_limiter(redis_url)
    assert limiter.book(keys.BULK, clients.NO_POINTS, "sent")[0] == Booking.BOOKED  # the slot now
    status, come_back, _ = limiter.book(keys.BULK, clients.NO_POINTS, "bulk-waiter")
    assert status == Booking.COME_BACK
    status, realtime_slot, _ = limiter.book(keys.REALTIME, clients.NO_POINTS, "realtime-waiter")
    # Realtime went ahead of the slot bulk was told to come back for.
    assert status == Booking.BOOKED and realtime_slot < come_back

    got: dict[str, Permit | None] = {}

    def wait_for_permit(lane: str) -> None:
        got[lane] = limiter.acquire(lane, clients.NO_POINTS)

    bulk = threading.Thread(target=wait_for_permit, args=(keys.BULK,))
    realtime = threading.Thread(target=wait_for_permit, args=(keys.REALTIME,))
    bulk.start()  # bulk starts waiting first
    realtime.start()
    bulk.join(10)
    realtime.join(10)
    assert got[keys.REALTIME] and got[keys.BULK]
    assert got[keys.REALTIME].slot_us < got[keys.BULK].slot_us


def test_bulk_alone_is_told_to_come_back_just_before_the_next_slot_frees(redis_url: str) -> None:
    limiter = clients.make_limiter(redis_url)
    status, first, _ = limiter.book(keys.BULK, clients.NO_POINTS, "b0")
    assert status == Booking.BOOKED
    status, come_back, _ = limiter.book(keys.BULK, clients.NO_POINTS, "b1")
    # Nothing learned yet: slots are paced at the slow-start margin.
    slow_start = -(-(limiter.window_us + limiter.slow_start_us) // limiter.limit)
    assert (status, come_back) == (Booking.COME_BACK, first + slow_start - BULK_HORIZON_US)
    permit = limiter.acquire(keys.BULK, clients.NO_POINTS)
    assert permit and permit.slot_us >= first + slow_start


def test_a_429_seen_by_one_process_pauses_the_others(redis_url: str) -> None:
    limiter = clients.make_limiter(redis_url)
    resume = limiter.pause(2.0)
    with pool() as workers:
        slot, now = workers.apply(clients.book_after_pause, (redis_url,))
    assert slot >= resume * 1_000_000 > now
    assert limiter.snapshot()["http_429"] == 1


def test_the_ledger_never_overspends_under_concurrency(redis_url: str) -> None:
    key = keys.points("site", "2026-11-22")
    with pool() as workers:
        succeeded = workers.starmap(
            clients.spend_points, [(redis_url, keys.BULK, 200, key, 50, seed) for seed in range(4)]
        )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert sum(succeeded) == int(client.hget(key, "used") or 0) == 50
    assert client.zcard(keys.points_reservations(key)) == 0


def test_bulk_leaves_the_realtime_reserve(redis_url: str, real_redis: redis.Redis) -> None:
    settings_ = Settings(
        _env_file=None, CTQ_DAILY_POINTS=100, CTQ_POINTS_RESERVE=0.1, CALLTOUCH_SITE_ID="s1"
    )
    ledger = Ledger(real_redis, settings_, clock=lambda: 1_795_000_000.0)
    limiter = clients.make_limiter(redis_url)
    limiter.limit = 10_000

    def spend(lane: str) -> int:
        spent = 0
        while (permit := limiter.acquire(lane, ledger.claim("callback", lane))) is not None:
            ledger.settle(permit, success=True)
            spent += 1
        return spent

    assert (spend(keys.BULK), spend(keys.REALTIME)) == (90, 10)
    assert ledger.today() == {
        "budget": 100,
        "used": 100,
        "reserved": 0,
        "left": 0,
        "exhausted": False,
    }


def test_the_day_rolls_over_at_midnight_in_the_configured_timezone(
    redis_url: str, real_redis: redis.Redis
) -> None:
    moscow = ZoneInfo("Europe/Moscow")
    before = datetime(2026, 11, 22, 23, 59, 59, tzinfo=moscow).timestamp()
    assert day_of(before, moscow) == "2026-11-22"
    assert day_of(before + 1, moscow) == "2026-11-23"
    assert next_reset(before, moscow) == before + 1
    assert day_of(before, ZoneInfo("Asia/Vladivostok")) == "2026-11-23"

    settings_ = Settings(_env_file=None, CTQ_DAILY_POINTS=1, CALLTOUCH_SITE_ID="s1")
    now = {"t": before}
    ledger = Ledger(real_redis, settings_, clock=lambda: now["t"])
    limiter = clients.make_limiter(redis_url)
    first = limiter.acquire(keys.REALTIME, ledger.claim("callback", keys.REALTIME))
    assert first is not None
    ledger.settle(first, success=True)
    assert limiter.acquire(keys.REALTIME, ledger.claim("callback", keys.REALTIME)) is None
    assert ledger.reset_at() == before + 1
    now["t"] = before + 1  # midnight in Moscow: a new day, a new budget
    assert limiter.acquire(keys.REALTIME, ledger.claim("callback", keys.REALTIME)) is not None


def test_two_limiter_objects_on_one_key_never_overwrite_each_others_bookings(
    redis_url: str,
) -> None:
    first, second = clients.make_limiter(redis_url), clients.make_limiter(redis_url)
    permits = [lim.acquire(keys.REALTIME, clients.NO_POINTS) for lim in (first, second) * 3]
    assert len({p.member for p in permits if p}) == 6
    assert first.client.zcard(f"{clients.LIMITER_KEY}:permits") == 6


def test_a_learned_margin_keeps_429s_rare_when_the_network_delay_varies(
    redis_url: str,
    start_sandbox: Callable[..., RunningSandbox],
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Requests reach the sandbox 0-100 ms after they leave: a fixed 25 ms margin meets a 429
    # on roughly a quarter of its windows; the learned one covers the spread.
    sandbox = start_sandbox(rate=20, latency=(0.0, 0.1))
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_RATE_LIMIT="20/second")
    start_worker(env, "-c", "4")
    start_worker(env, "-c", "4")
    phones = [f"7999030{n:04d}" for n in range(150)]
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps({"routeKey": "rk", "phone": p}) + "\n" for p in phones))
    assert run_ctq(["enqueue", "callback", "--file", str(path)], env).returncode == 0

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: jobstore.counts(client)["done"] == 150, timeout=120, interval=0.5)
    answered = sandbox.received()
    too_many = sum(r["status"] == 429 for r in answered)
    assert too_many <= 8, f"{too_many} of {len(answered)} requests met a 429"
    status = json.loads(run_ctq(["status", "--json"], env).stdout)
    [shown] = [lim for name, lim in status["limiters"].items() if "127.0.0.1" in name]
    assert shown["spread_ms"] >= 80 and shown["margin_ms"] >= 90


@pytest.mark.parametrize(
    ("processes", "weights", "expected"),
    [
        # One account has 4 processes asking, two have 1 each: first come, first served would
        # give the first about 4/6 of the permits; a fair share gives each a third.
        ({"big": 4, "small-1": 1, "small-2": 1}, {}, {"big": 1 / 3, "small-1": 1 / 3}),
        # Weights: an account of weight 2 gets twice the permits of one of weight 1.
        ({"heavy": 2, "light": 2}, {"heavy": 2}, {"heavy": 2 / 3, "light": 1 / 3}),
    ],
)
def test_bulk_permits_are_shared_fairly_between_the_accounts_asking(
    redis_url: str,
    real_redis: redis.Redis,
    processes: dict[str, int],
    weights: dict[str, int],
    expected: dict[str, float],
) -> None:
    everyone = sum(processes.values())
    jobs = [
        (redis_url, account, weights.get(account, 1), everyone)
        for account, count in processes.items()
        for _ in range(count)
    ]
    # 3 s at 20 permits a second, once every process is up: about 60 permits in all.
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as workers:
        taken = workers.starmap(clients.take_bulk_permits_together, jobs)
    per_account: dict[str, int] = {}
    for (_, account, _, _), count in zip(jobs, taken, strict=True):
        per_account[account] = per_account.get(account, 0) + count
    total = sum(per_account.values())
    for account, share in expected.items():
        assert abs(per_account[account] / total - share) < 0.12, per_account


def test_a_callback_arriving_while_bulk_jobs_wait_for_a_slot_gets_one_process_at_once(
    redis_url: str, real_redis: redis.Redis
) -> None:
    """Two bulk jobs wait out a 1.5 s pause; a callback's message appears for 60 ms of it.
    Exactly one of them gives its process to the callback while the message waits (not only
    when the pause ends: by then the message is gone), the other books its permit after."""
    clients.make_limiter(redis_url).pause(1.5)
    answers: list[object] = []

    def bulk_job() -> None:
        answers.append(clients.make_limiter(redis_url).acquire(keys.BULK, clients.NO_POINTS))

    waiting = [threading.Thread(target=bulk_job) for _ in range(2)]
    for thread in waiting:
        thread.start()
    time.sleep(0.2)
    real_redis.lpush(keys.REALTIME, "a callback's message")
    time.sleep(0.06)
    real_redis.delete(keys.REALTIME)  # the freed process took it
    for thread in waiting:
        thread.join(timeout=30)
    gave_way = [a for a in answers if isinstance(a, ComeBack) and a.give_way]
    assert len(gave_way) == 1, answers
    assert sum(isinstance(a, Permit) for a in answers) == 1, answers
