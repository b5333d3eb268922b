"""Running one job against canned answers: state, results, dead letters, waits, delays."""

from __future__ import annotations

import json
import logging
import random
import threading
from typing import Any

import fakeredis
import pytest
import requests

from config import Settings
from tasks import callback, comment
from tasks.kind import JobKind
from worker import deadletter, jobstore, keys
from worker.breaker import Breaker
from worker.cancel import cancel_jobs
from worker.jobstore import State
from worker.lease import Lease
from worker.ledger import Ledger
from worker.outcome import LastOutcome
from worker.runner import GAVE_WAY, run_job
from worker.runtime import Runtime, build_limiter


def answer(status: int, body: Any = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b"" if body is None else json.dumps(body).encode()
    return response


class CannedApi:
    """Stands in for the Calltouch client: answers in order, records what was sent."""

    def __init__(self, *answers: requests.Response | requests.RequestException) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.sent.append((path, body))
        return self.answers.pop(0)

    def after(self, verdict: Any) -> bool:
        return False


MIDNIGHT_MOSCOW = 1_795_381_200.0  # 2026-11-23 00:00 Europe/Moscow
NOW = MIDNIGHT_MOSCOW - 1000.0


@pytest.fixture
def runtime(fake_redis: fakeredis.FakeRedis) -> Runtime:
    settings = Settings(
        _env_file=None,
        CTQ_MAX_ATTEMPTS=3,
        CTQ_BACKOFF_BASE=1,
        CTQ_INPROCESS_WAIT_MAX=10,
        CTQ_LONG_RETRY_DELAY=3600,
        CTQ_DAILY_POINTS=2,
        CTQ_POINTS_EXHAUSTED_CODES=[10099],
        CALLTOUCH_SITE_ID="s1",
    )
    rt = Runtime(
        settings=settings,
        redis=fake_redis,
        calltouch=CannedApi(),  # type: ignore[arg-type]
        limiter=build_limiter(settings, fake_redis),
        ledger=Ledger(fake_redis, settings, clock=lambda: NOW),
        rng=random.Random(0),
        clock=lambda: NOW,
    )
    rt.slept = []  # type: ignore[attr-defined]
    rt.sleep = rt.slept.append  # type: ignore[attr-defined]
    return rt


def add_job(rt: Runtime, kind: JobKind, payload: dict[str, Any], job_id: str = "job1") -> str:
    rt.redis.hset(keys.job(job_id), mapping=jobstore.new_fields(kind.name, kind.lane, payload, 1.0))
    rt.redis.hincrby(keys.STATS, "queued", 1)
    return job_id


CALLBACK = {"routeKey": "rk", "phone": "79991234567"}


def moved_when_due(rt: Runtime, job_id: str) -> None:
    """What the delay mover does for a parked job once it is due: queued again (the run that
    follows stands for its new message)."""
    rt.redis.zrem(keys.DELAYED, job_id)
    jobstore.transition(rt.redis, job_id, State.QUEUED, now=rt.clock())


def test_success_records_done_and_the_last_answer(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(200, {"data": {"widgetRequestId": 5}}))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DONE
    job = jobstore.load(runtime.redis, "job1")
    assert job and (job.state, job.attempts, job.last["reason"]) == (State.DONE, 1, "http_2xx")
    assert runtime.calltouch.sent == [(callback.KIND.path, CALLBACK)]
    assert jobstore.counts(runtime.redis)["done"] == 1
    assert jobstore.counts(runtime.redis)["queued"] == 0


def test_comment_results_are_kept_per_lead(runtime: Runtime) -> None:
    rows = [
        {"callInfo": {"callId": 9}, "requestInfo": None, "commented": True, "error": None},
        {"callInfo": None, "requestInfo": None, "commented": False, "error": "Lead not found"},
    ]
    runtime.calltouch = CannedApi(answer(200, {"meta": [], "data": {"comments": rows}}))
    add_job(runtime, comment.KIND, {"comments": []})
    run_job(runtime, comment.KIND, "job1")
    job = jobstore.load(runtime.redis, "job1")
    assert job and job.result == [
        {"commented": True, "error": None, "callId": 9, "requestId": None},
        {"commented": False, "error": "Lead not found", "callId": None, "requestId": None},
    ]


def test_a_refused_job_is_dead_lettered_with_payload_code_and_attempts(runtime: Runtime) -> None:
    error = {"data": {"apiErrorData": {"errorCode": 10003, "errorMessage": "No widget"}}}
    runtime.calltouch = CannedApi(answer(400, error))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DEAD
    record = deadletter.get(runtime.redis, "job1")
    assert record is not None
    assert (record["payload"], record["code"], record["message"], record["attempts"]) == (
        CALLBACK,
        10003,
        "No widget",
        1,
    )
    assert record["created_at"] == 1.0 and record["dead_at"] == NOW
    assert jobstore.counts(runtime.redis)["dead"] == 1


def test_transient_errors_wait_in_process_then_succeed(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(503), requests.ConnectionError("reset"), answer(200))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DONE
    assert len(runtime.slept) == 2  # type: ignore[attr-defined]
    assert jobstore.load(runtime.redis, "job1").attempts == 3  # type: ignore[union-attr]


def test_retries_run_out_into_the_dead_letter_queue(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(500), answer(500), answer(500))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DEAD
    record = deadletter.get(runtime.redis, "job1")
    assert record and record["reason"].startswith("gave up after 3 attempts")


def test_long_delays_park_the_job_in_the_delay_set(runtime: Runtime) -> None:
    error = {"data": {"apiErrorData": {"errorCode": 10006, "errorMessage": "limit"}}}
    runtime.calltouch = CannedApi(answer(400, error))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DELAYED
    assert runtime.redis.zscore(keys.DELAYED, "job1") == NOW + 3600
    assert runtime.slept == []  # type: ignore[attr-defined]


def test_a_redelivered_finished_job_is_not_sent_again(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(200))
    add_job(runtime, callback.KIND, CALLBACK)
    run_job(runtime, callback.KIND, "job1")
    assert run_job(runtime, callback.KIND, "job1") == State.DONE
    assert len(runtime.calltouch.sent) == 1


def test_a_spare_copy_of_a_delayed_or_paused_jobs_message_sends_nothing(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(400, NO_MINUTES), answer(200))
    for job_id in ("a", "b"):
        add_job(runtime, callback.KIND, CALLBACK, job_id)
    run_job(runtime, callback.KIND, "a")  # parked as the probe, due in 300 s
    run_job(runtime, callback.KIND, "b")  # held by the open breaker
    # A second message of each (a put-back, a redelivery) arrives before they are due.
    assert run_job(runtime, callback.KIND, "a") == State.DELAYED
    assert run_job(runtime, callback.KIND, "b") == State.PAUSED
    assert len(runtime.calltouch.sent) == 1
    assert runtime.redis.zscore(keys.DELAYED, "a") == NOW + 300


def test_a_message_for_a_missing_job_sends_nothing(runtime: Runtime) -> None:
    assert run_job(runtime, callback.KIND, "nope") is None
    assert runtime.calltouch.sent == []


def test_a_429_pauses_the_limiter_and_uses_no_attempt(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(429), answer(200))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DONE
    assert len(runtime.calltouch.sent) == 2
    assert jobstore.load(runtime.redis, "job1").attempts == 1  # type: ignore[union-attr]
    assert runtime.limiter and runtime.limiter.snapshot()["http_429"] == 1


def test_points_are_committed_on_success_and_refunded_on_failure(runtime: Runtime) -> None:
    error = {"data": {"apiErrorData": {"errorCode": 10003, "errorMessage": "No widget"}}}
    runtime.calltouch = CannedApi(answer(200), answer(400, error))
    add_job(runtime, callback.KIND, CALLBACK, "a")
    add_job(runtime, callback.KIND, CALLBACK, "b")
    run_job(runtime, callback.KIND, "a")
    run_job(runtime, callback.KIND, "b")
    assert runtime.ledger.today() == {
        "budget": 2,
        "used": 1,
        "reserved": 0,
        "left": 1,
        "exhausted": False,
    }


def test_a_spent_budget_parks_the_job_until_midnight_without_sending(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(200), answer(200))
    for job_id in ("a", "b", "c"):
        add_job(runtime, callback.KIND, CALLBACK, job_id)
    assert [run_job(runtime, callback.KIND, j) for j in ("a", "b", "c")] == [
        State.DONE,
        State.DONE,
        State.DELAYED,
    ]
    assert len(runtime.calltouch.sent) == 2
    assert runtime.redis.zscore(keys.DELAYED, "c") == MIDNIGHT_MOSCOW
    job = jobstore.load(runtime.redis, "c")
    assert job and job.attempts == 0 and job.last["message"] == "points budget spent"


def test_the_api_saying_points_are_spent_stops_spending_until_the_reset(runtime: Runtime) -> None:
    spent = {"data": {"apiErrorData": {"errorCode": 10099, "errorMessage": "No points"}}}
    runtime.calltouch = CannedApi(answer(400, spent))
    add_job(runtime, callback.KIND, CALLBACK, "a")
    add_job(runtime, callback.KIND, CALLBACK, "b")
    assert run_job(runtime, callback.KIND, "a") == State.DELAYED
    assert run_job(runtime, callback.KIND, "b") == State.DELAYED
    assert len(runtime.calltouch.sent) == 1
    assert runtime.ledger.today()["exhausted"] is True
    assert runtime.redis.zscore(keys.DELAYED, "b") == MIDNIGHT_MOSCOW


NO_MINUTES = {"data": {"apiErrorData": {"errorCode": 10001, "errorMessage": "No minutes"}}}


def test_an_account_level_answer_pauses_the_lane_and_dead_letters_nothing(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(400, NO_MINUTES))
    for job_id in ("a", "b", "c"):
        add_job(runtime, callback.KIND, CALLBACK, job_id)
    assert [run_job(runtime, callback.KIND, j) for j in ("a", "b", "c")] == [
        State.DELAYED,
        State.PAUSED,
        State.PAUSED,
    ]
    assert len(runtime.calltouch.sent) == 1  # b and c were not sent into the same wall
    state = Breaker(runtime.redis, "s1", keys.REALTIME).state()
    assert state and state["code"] == "10001" and state["held"] == 2
    assert state["probe_at"] == NOW + 300
    assert runtime.redis.zscore(keys.DELAYED, "a") == NOW + 300  # a comes back as the probe
    assert deadletter.count(runtime.redis) == 0
    assert jobstore.load(runtime.redis, "a").attempts == 0  # type: ignore[union-attr]


def test_a_successful_probe_resumes_the_lane_and_releases_held_jobs(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(400, NO_MINUTES), answer(200))
    for job_id in ("a", "b"):
        add_job(runtime, callback.KIND, CALLBACK, job_id)
    run_job(runtime, callback.KIND, "a")
    run_job(runtime, callback.KIND, "b")
    later = NOW + 301
    runtime.clock = lambda: later
    moved_when_due(runtime, "a")
    assert run_job(runtime, callback.KIND, "a") == State.DONE  # the probe
    assert Breaker(runtime.redis, "s1", keys.REALTIME).state() is None
    assert runtime.redis.zscore(keys.DELAYED, "b") == later  # released: due now


def test_a_failed_probe_keeps_the_lane_paused(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(403), answer(403))
    add_job(runtime, callback.KIND, CALLBACK, "a")
    run_job(runtime, callback.KIND, "a")
    runtime.clock = lambda: NOW + 301
    moved_when_due(runtime, "a")
    assert run_job(runtime, callback.KIND, "a") == State.DELAYED
    state = Breaker(runtime.redis, "s1", keys.REALTIME).state()
    assert state and state["probe_at"] == NOW + 301 + 300 and state["since"] == NOW


def test_a_job_leased_by_another_worker_is_not_sent_but_looked_at_later(runtime: Runtime) -> None:
    add_job(runtime, callback.KIND, CALLBACK)
    runtime.redis.set(keys.lease("job1"), "other-worker", px=5000)
    assert run_job(runtime, callback.KIND, "job1") == State.QUEUED
    assert runtime.calltouch.sent == []
    assert NOW + 4 < (runtime.redis.zscore(keys.DELAYED, "job1") or 0) <= NOW + 5


def test_a_job_in_flight_when_another_opened_the_breaker_is_held_not_a_second_probe(
    runtime: Runtime,
) -> None:
    breaker = Breaker(runtime.redis, "s1", keys.REALTIME)

    class OpenedMeanwhile(CannedApi):
        def post(self, path: str, body: dict[str, Any]) -> Any:
            breaker.open(
                "other", "account-level: x", LastOutcome("pause", "api_10001", code=10001), NOW, 300
            )  # another worker
            return super().post(path, body)

    runtime.calltouch = OpenedMeanwhile(answer(400, NO_MINUTES))
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.PAUSED
    assert runtime.redis.zscore(keys.DELAYED, "job1") is None
    assert breaker.state()["held"] == 1  # type: ignore[index]


def test_a_probe_that_meets_a_429_stays_the_probe(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(400, NO_MINUTES), answer(429), answer(200))
    for job_id in ("a", "b"):
        add_job(runtime, callback.KIND, CALLBACK, job_id)
    run_job(runtime, callback.KIND, "a")
    run_job(runtime, callback.KIND, "b")
    runtime.clock = lambda: NOW + 301
    moved_when_due(runtime, "a")
    assert run_job(runtime, callback.KIND, "a") == State.DONE
    assert Breaker(runtime.redis, "s1", keys.REALTIME).state() is None


def api_error(code: int, message: str = "text") -> dict[str, Any]:
    return {"data": {"apiErrorData": {"errorCode": code, "errorMessage": message}}}


def test_a_403_carrying_its_own_error_code_pauses_and_dead_letters_nothing(
    runtime: Runtime,
) -> None:
    runtime.calltouch = CannedApi(answer(403, api_error(403, "Forbidden")))
    for n in range(20):
        add_job(runtime, callback.KIND, CALLBACK, f"j{n}")
    states = [run_job(runtime, callback.KIND, f"j{n}") for n in range(20)]
    assert states == [State.DELAYED] + [State.PAUSED] * 19  # the first is the probe
    assert len(runtime.calltouch.sent) == 1
    assert deadletter.count(runtime.redis) == 0
    state = Breaker(runtime.redis, "s1", keys.REALTIME).state()
    assert state and state["http_status"] == "403" and state["held"] == 19


def test_a_run_of_unknown_codes_pauses_the_lane_instead_of_dead_lettering_the_backlog(
    runtime: Runtime,
) -> None:
    runtime.settings = runtime.settings.model_copy(update={"inprocess_wait_max": 0})
    runtime.calltouch = CannedApi(*[answer(400, api_error(10100))] * 3)
    for n in range(30):
        add_job(runtime, callback.KIND, CALLBACK, f"j{n}")
    states = [run_job(runtime, callback.KIND, f"j{n}") for n in range(30)]
    # Two are parked for a retry, the third answer opens the breaker (it is the probe).
    assert states == [State.DELAYED] * 3 + [State.PAUSED] * 27
    assert deadletter.count(runtime.redis) == 0
    state = Breaker(runtime.redis, "s1", keys.REALTIME).state()
    assert state and "3 answers in a row with an unknown API code (last: 10100)" in state["reason"]


def test_any_other_answer_ends_a_run_of_unknown_codes(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"inprocess_wait_max": 0})
    unknown = answer(400, api_error(10100))
    runtime.calltouch = CannedApi(unknown, unknown, answer(200), unknown, unknown)
    for n in range(5):
        add_job(runtime, callback.KIND, CALLBACK, f"j{n}")
    states = [run_job(runtime, callback.KIND, f"j{n}") for n in range(5)]
    assert states == [State.DELAYED, State.DELAYED, State.DONE, State.DELAYED, State.DELAYED]
    assert Breaker(runtime.redis, "s1", keys.REALTIME).state() is None


def test_an_answer_is_recorded_once_redis_is_back_and_nothing_is_sent_twice() -> None:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server, decode_responses=True)
    settings = Settings(_env_file=None, CALLTOUCH_SITE_ID="s1", CTQ_DAILY_POINTS=10)

    class RedisGoesAwayMeanwhile(CannedApi):
        def post(self, path: str, body: dict[str, Any]) -> Any:
            server.connected = False  # Redis stops while the request is in flight
            threading.Timer(0.5, lambda: setattr(server, "connected", True)).start()
            return super().post(path, body)

    rt = Runtime(
        settings=settings,
        redis=client,
        calltouch=RedisGoesAwayMeanwhile(answer(200)),  # type: ignore[arg-type]
        limiter=build_limiter(settings, client),
        ledger=Ledger(client, settings, clock=lambda: NOW),
        clock=lambda: NOW,
    )
    add_job(rt, callback.KIND, CALLBACK)
    assert run_job(rt, callback.KIND, "job1") == State.DONE
    assert run_job(rt, callback.KIND, "job1") == State.DONE  # the redelivered message
    assert len(rt.calltouch.sent) == 1  # type: ignore[attr-defined]
    assert rt.ledger.today()["used"] == 1 and rt.ledger.today()["reserved"] == 0
    assert client.get(keys.lease("job1")) is None


def test_a_retry_after_beyond_the_wait_budget_parks_the_job_instead_of_sleeping(
    runtime: Runtime,
) -> None:
    runtime.calltouch = CannedApi(answer(429))
    runtime.calltouch.answers[0].headers["Retry-After"] = "3600"
    add_job(runtime, callback.KIND, CALLBACK)
    assert run_job(runtime, callback.KIND, "job1") == State.DELAYED
    assert len(runtime.calltouch.sent) == 1
    assert max(runtime.slept, default=0) <= 10  # type: ignore[attr-defined]
    due = runtime.redis.zscore(keys.DELAYED, "job1")
    assert due is not None and NOW + 3590 < due <= NOW + 3601
    job = jobstore.load(runtime.redis, "job1")
    assert job and job.attempts == 0 and "longer than a worker waits" in job.last["message"]


def test_a_bulk_job_gives_its_process_to_a_waiting_callback(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(200))
    add_job(runtime, comment.KIND, {"comments": []})
    runtime.redis.lpush(keys.REALTIME, "a callback's message, waiting for a free process")
    assert run_job(runtime, comment.KIND, "job1") == GAVE_WAY  # its message is requeued
    assert runtime.calltouch.sent == []
    assert runtime.redis.zscore(keys.DELAYED, "job1") is None
    job = jobstore.load(runtime.redis, "job1")
    assert job and job.state == State.QUEUED and job.attempts == 0
    assert "gave way" in job.last["message"]
    runtime.redis.delete(keys.REALTIME)
    assert run_job(runtime, comment.KIND, "job1") == State.DONE


def test_a_cancelled_job_is_not_sent_when_a_worker_takes_its_message(runtime: Runtime) -> None:
    runtime.calltouch = CannedApi(answer(200))
    add_job(runtime, callback.KIND, CALLBACK)
    [(_, was)] = cancel_jobs(runtime.redis, ["job1"], now=NOW, keep_seconds=60)
    assert was == State.QUEUED
    assert run_job(runtime, callback.KIND, "job1") == State.CANCELLED
    assert runtime.calltouch.sent == []


def test_a_job_cancelled_just_as_a_worker_takes_it_is_not_sent(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.calltouch = CannedApi(answer(200))
    add_job(runtime, callback.KIND, CALLBACK)
    take = Lease.acquire

    def take_then_cancelled(lease: Lease) -> bool:
        took = take(lease)
        [(_, was)] = cancel_jobs(runtime.redis, ["job1"], now=NOW, keep_seconds=60)
        assert was == State.QUEUED  # not running yet: the worker has only loaded it
        return took

    monkeypatch.setattr(Lease, "acquire", take_then_cancelled)
    assert run_job(runtime, callback.KIND, "job1") == State.CANCELLED
    assert runtime.calltouch.sent == []
    assert jobstore.state_of(runtime.redis, "job1") == State.CANCELLED


def outcome_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("worker") and r.levelno == logging.INFO]


@pytest.mark.parametrize(
    ("answers", "outcomes"),
    [
        ([answer(200)], ["done"]),
        ([answer(400, {"data": {"apiErrorData": {"errorCode": 10003}}})], ["dead"]),
        ([answer(503), answer(200)], ["retry", "done"]),
        ([answer(401)], ["paused"]),
        ([answer(402, {"data": {"apiErrorData": {"errorCode": 10099}}})], ["delayed"]),
        ([answer(429), answer(200)], ["done"]),  # a 429 is the limiter's, not the job's
    ],
)
def test_each_outcome_of_a_job_is_one_info_line_with_its_id_kind_and_why_not_its_payload(
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    answers: list[requests.Response],
    outcomes: list[str],
) -> None:
    caplog.set_level(logging.INFO)
    runtime.calltouch = CannedApi(*answers)
    add_job(runtime, callback.KIND, CALLBACK)
    run_job(runtime, callback.KIND, "job1")
    lines = outcome_lines(caplog)
    assert [(r.job_id, r.kind, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        ("job1", "callback", outcome) for outcome in outcomes
    ]
    for record in lines:
        said = record.getMessage()
        assert said.startswith(f"job job1 callback {record.outcome}: ")  # type: ignore[attr-defined]
        assert CALLBACK["phone"] not in said and CALLBACK["routeKey"] not in said.split(":")[0]


def test_a_job_cancelled_as_it_is_taken_and_a_held_job_each_say_so_once(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    add_job(runtime, callback.KIND, CALLBACK, job_id="job1")
    take = Lease.acquire

    def take_then_cancelled(lease: Lease) -> bool:
        took = take(lease)
        list(cancel_jobs(runtime.redis, ["job1"], now=NOW, keep_seconds=60))
        return took

    monkeypatch.setattr(Lease, "acquire", take_then_cancelled)
    assert run_job(runtime, callback.KIND, "job1") == State.CANCELLED
    monkeypatch.setattr(Lease, "acquire", take)
    Breaker(runtime.redis, "s1", keys.REALTIME).open(
        "other", "account-level: x", LastOutcome("pause", "http_401"), NOW, 300
    )
    add_job(runtime, callback.KIND, CALLBACK, job_id="job2")
    assert run_job(runtime, callback.KIND, "job2") == State.PAUSED
    said = [(r.job_id, r.outcome) for r in outcome_lines(caplog)]  # type: ignore[attr-defined]
    assert said == [("job1", "cancelled"), ("job2", "paused")]
