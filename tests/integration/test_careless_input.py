"""Careless input on every input path (enqueue, stage, campaign load, dlq replay): arbitrary
bytes and arbitrary JSON get exit 0, 2 or 3 with one line per problem, never a traceback,
and an input that is refused leaves nothing behind in Redis. In-process against a real
redis-server, so that hypothesis can try hundreds of inputs."""

from __future__ import annotations

import contextlib
import io
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from tests.helpers import SITE_ID, TEST_TOKEN
from worker import deadletter, jobstore, keys

pytestmark = pytest.mark.integration

FIELDS = [
    "routeKey", "phone", "matching", "addComment", "type", "callParams", "callId",
    "requestParams", "requestId", "phoneNumber", "poolName", "displayOptions", "source",
    "unitId", "tags", "fields", "name", "value", "provider", "site_id", "scheduleTime",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["79991234567", "rk", "call", "pozvonim", "2026-11-23 10:00:00", ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
lines = st.lists(json_values.map(lambda v: json.dumps(v, ensure_ascii=False)), max_size=4)
raw_bytes = st.binary(max_size=200)
inputs = lines.map(lambda ls: "\n".join(ls).encode()) | raw_bytes


@pytest.fixture
def env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, value in {
        "REDIS_URL": redis_url,
        "CTQ_DATA_DIR": str(tmp_path / "data"),
        "CALLTOUCH_SITE_ID": SITE_ID,
        "CALLTOUCH_TOKEN": TEST_TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    yield tmp_path


def ctq(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def stored(client: redis.Redis) -> dict[str, Any]:
    """What a refused input must not change: jobs, queues, delays, staging, campaigns."""
    return {
        "jobs": jobstore.counts(client),
        "queues": [client.llen(name) for name in keys.CONSUME_ORDER],
        "delayed": client.zcard(keys.DELAYED),
        "staged": client.llen(keys.STAGED_COMMENTS),
        "campaigns": client.scard(keys.CAMPAIGNS),
    }


def assert_answered(status: int, err: str) -> None:
    assert status in (0, 2, 3), err
    assert "Traceback" not in err and "internal error" not in err, err


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=inputs, kind=st.sampled_from(["comment", "callback", "pool-update"]))
def test_enqueue_answers_any_input_and_enqueues_all_or_nothing(
    env: Path, real_redis: redis.Redis, data: bytes, kind: str
) -> None:
    path = env / "input.jsonl"
    path.write_bytes(data)
    before = stored(real_redis)
    status, out, err = ctq("enqueue", kind, "--file", str(path))
    assert_answered(status, err)
    if status != 0:
        assert stored(real_redis) == before
        assert out == ""
    else:
        for job_id in out.split():
            assert real_redis.exists(keys.job(job_id))


@FUZZ
@given(data=inputs)
def test_stage_answers_any_input_and_stages_all_or_nothing(
    env: Path, real_redis: redis.Redis, data: bytes
) -> None:
    path = env / "leads.jsonl"
    path.write_bytes(data)
    before = stored(real_redis)
    status, _, err = ctq("stage", "comment", "--file", str(path))
    assert_answered(status, err)
    if status != 0:
        assert stored(real_redis) == before


csv_cells = st.text(alphabet=string.printable + "йё,;\"'", max_size=15)
csv_files = st.lists(
    st.lists(csv_cells, min_size=1, max_size=4).map(lambda row: ",".join(row)), max_size=5
).map(lambda rows: "\n".join(rows).encode())


@FUZZ
@given(data=inputs | csv_files, suffix=st.sampled_from([".jsonl", ".csv"]))
def test_campaign_load_answers_any_file_and_loads_all_or_nothing(
    env: Path, real_redis: redis.Redis, data: bytes, suffix: str
) -> None:
    path = env / f"campaign{suffix}"
    path.write_bytes(data)
    before = stored(real_redis)
    name = f"c{real_redis.incr('test:names')}"
    status, _, err = ctq("campaign", "load", name, str(path), "--route-key", "rk")
    assert_answered(status, err)
    if status != 0:
        assert stored(real_redis) == before


@FUZZ
@given(payloads=st.lists(json_values, min_size=1, max_size=3))
def test_dlq_replay_answers_any_stored_payload(
    env: Path, real_redis: redis.Redis, payloads: list[Any]
) -> None:
    real_redis.delete(keys.DLQ, keys.DLQ_INDEX)
    for n, payload in enumerate(payloads):
        record = {"id": f"dead-{n}", "kind": "callback", "lane": "realtime", "payload": payload}
        deadletter.add(
            real_redis, {**record, "reason": "test", "message": "", "attempts": 1}, now=n
        )
    status, out, err = ctq("dlq", "replay", "--all")
    assert_answered(status, err)
    assert status == (2 if "refused" in out and "refused 0" not in out else 0), out
