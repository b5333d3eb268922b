"""Every failure is one line on stderr and the documented exit status, never a traceback:
each case here once printed one (real `ctq` processes, a real redis-server)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import RunningSandbox, env_for
from tests.helpers import ROOT, free_port, run_ctq, wait_for
from worker import deadletter, jobstore, keys

pytestmark = pytest.mark.integration

CALLBACK = '{"routeKey": "rk", "phone": "79991234567"}'


@pytest.fixture
def env(redis_url: str, sandbox: RunningSandbox, tmp_path: Path) -> dict[str, str]:
    return env_for(redis_url, sandbox, tmp_path / "data")


def one_line(answer: subprocess.CompletedProcess[str], status: int, *needles: str) -> str:
    assert answer.returncode == status, answer.stderr
    assert "Traceback" not in answer.stderr and answer.stderr.count("\n") == 1, answer.stderr
    for needle in needles:
        assert needle in answer.stderr
    return answer.stderr


def lead(call_id: object) -> str:
    return json.dumps({"matching": [{"type": "call", "callParams": {"callId": call_id}}],
                       "addComment": "tagged"})  # fmt: skip


@pytest.mark.parametrize(
    ("call_id", "reason"),
    [
        (True, "callId: Input should be a valid integer, got true"),
        (-5, "callId: Input should be greater than 0"),
        (10**38, "callId: Input should be less than or equal to 9223372036854775807"),
        ("17", 'callId: Input should be a valid integer, got "17"'),
    ],
)
def test_an_id_that_is_not_a_positive_64_bit_integer_is_refused(
    env: dict[str, str], real_redis: redis.Redis, call_id: object, reason: str
) -> None:
    answer = run_ctq(["enqueue", "comment", lead(call_id)], env)
    assert answer.returncode == 2 and reason in answer.stderr, answer.stderr
    assert jobstore.counts(real_redis)["queued"] == 0


def test_oversized_lines_deep_nesting_huge_numbers_and_bad_utf8_are_problems_of_their_line(
    env: dict[str, str], real_redis: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "careless.jsonl"
    huge_field = json.dumps({"routeKey": "rk", "phone": "79991234567", "utmSource": "x" * 70_000})
    path.write_bytes(
        b"\n".join(
            [
                huge_field.encode(),
                b"[" * 10_000 + b"]" * 10_000,
                b'{"routeKey": "rk", "phone": ' + b"9" * 5000 + b"}",
                b'{"routeKey": "r\xff"}',
                CALLBACK.encode(),
            ]
        )
    )
    answer = run_ctq(["enqueue", "callback", "--file", str(path)], env)
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert answer.stderr.splitlines() == [
        f"line 1: (input): line of {len(huge_field)} bytes, more than 65536 (CTQ_MAX_LINE_BYTES)",
        "line 2: (json): not valid JSON: nested too deeply",
        "line 3: (json): not valid JSON: a number of over 4300 digits",
        "line 4: (input): not valid UTF-8 at byte 16",
        "refused: 4 problem(s); nothing was enqueued",
    ]
    assert jobstore.counts(real_redis)["queued"] == 0


def test_a_text_field_longer_than_4096_characters_is_refused(env: dict[str, str]) -> None:
    body = json.dumps({"routeKey": "rk", "phone": "79991234567", "callUrl": "u" * 5000})
    answer = run_ctq(["enqueue", "callback", body], env)
    assert answer.returncode == 2
    assert "line 1: callUrl: String should have at most 4096 characters" in answer.stderr


def test_a_byte_order_mark_is_accepted_in_jsonl(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + CALLBACK.encode() + b"\n")
    answer = run_ctq(["enqueue", "callback", "--file", str(path)], env)
    assert answer.returncode == 0, answer.stderr


def test_rejects_into_a_missing_directory_is_refused_before_loading(
    env: dict[str, str], real_redis: redis.Redis, tmp_path: Path
) -> None:
    rows = tmp_path / "calls.csv"
    rows.write_text("phone\n79991234567\nnot-a-phone\n")
    answer = run_ctq(
        ["campaign", "load", "spring", str(rows), "--route-key", "rk", "--skip-invalid",
         "--rejects", str(tmp_path / "missing" / "rejects.jsonl")],
        env,
    )  # fmt: skip
    one_line(answer, 2, "cannot write the refused rows to", "nothing was loaded")
    assert not real_redis.exists(keys.campaign("spring"))


def test_a_reader_that_goes_away_gets_no_traceback(
    env: dict[str, str], real_redis: redis.Redis
) -> None:
    for n in range(600):
        record = {"id": f"dead-{n:04}", "kind": "callback", "lane": "realtime",
                  "payload": {"routeKey": "rk", "phone": "79991234567"}, "reason": "test",
                  "message": "m" * 200, "attempts": 1, "dead_at": n}  # fmt: skip
        deadletter.add(real_redis, record, now=n)
    piped = subprocess.run(
        f"{sys.executable} -m cli.main dlq list --json --limit 600 | head -c 10",
        shell=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.stdout == "[\n  {\n    " and piped.stderr == ""


def test_ctrl_c_while_reading_stdin_enqueues_nothing(
    env: dict[str, str], real_redis: redis.Redis
) -> None:
    clients_before = len(real_redis.client_list())
    reading = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "enqueue", "callback", "--file", "-"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reading.stdin is not None
    reading.stdin.write(CALLBACK + "\n")
    reading.stdin.flush()
    # Started, connected to Redis, reading: it has the line and waits for more.
    wait_for(lambda: len(real_redis.client_list()) > clients_before, timeout=60)
    time.sleep(0.5)
    reading.send_signal(signal.SIGINT)
    _, err = reading.communicate(timeout=30)
    assert reading.returncode == 130 and err == "ctq: interrupted\n"
    assert jobstore.counts(real_redis)["queued"] == 0 and real_redis.llen(keys.REALTIME) == 0


def test_a_setting_that_is_not_json_names_the_variable(env: dict[str, str]) -> None:
    answer = run_ctq(["status"], {**env, "CTQ_POINT_COSTS": "{bad"})
    one_line(answer, 1, "configuration: CTQ_POINT_COSTS: not valid JSON")


def test_a_misspelled_ctq_variable_is_refused_with_the_likely_name(env: dict[str, str]) -> None:
    answer = run_ctq(["enqueue", "callback", CALLBACK], {**env, "CTQ_DAILY_POINT": "100"})
    one_line(answer, 1, "CTQ_DAILY_POINT is not a ctq setting (did you mean CTQ_DAILY_POINTS?)")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["--bogus"], "ctq: unrecognized arguments: --bogus (see ctq --help)"),
        ([], "ctq: no COMMAND (see ctq --help)"),
        (
            ["enqueue", "callback", CALLBACK, "--bogus"],
            "ctq enqueue: unrecognized arguments: --bogus (see ctq enqueue --help)",
        ),
        (
            ["dlq", "list", "--limit", "x"],
            "ctq dlq list: argument --limit: invalid int value: 'x' (see ctq dlq list --help)",
        ),
        (["dlq", "list", "--limit", "-5"], "ctq: --limit must be at least 1"),
        (["dlq", "list", "--limit", "0"], "ctq: --limit must be at least 1"),
    ],
)
def test_a_bad_argument_is_one_line_naming_the_command_and_nothing_is_done(
    env: dict[str, str], real_redis: redis.Redis, command: list[str], said: str
) -> None:
    answer = run_ctq(command, env)
    assert one_line(answer, 2, said).strip() == said
    assert answer.stdout == "" and not real_redis.keys("ctq:job:*")


@pytest.mark.parametrize(
    "command",
    [
        ["campaign", "load", "spring", "{rows}", "--route-key", "rk"],
        ["nightly", "run"],
        ["dlq", "list"],
        ["resume"],
    ],
)
def test_with_redis_down_every_command_exits_3(
    sandbox: RunningSandbox, tmp_path: Path, command: list[str]
) -> None:
    rows = tmp_path / "calls.csv"
    rows.write_text("phone\n79991234567\n")
    env = env_for(f"redis://127.0.0.1:{free_port()}/0", sandbox, tmp_path / "data")
    answer = run_ctq([part.replace("{rows}", str(rows)) for part in command], env)
    one_line(answer, 3, "Redis")


def test_unknown_ids_are_errors_and_ids_do_not_mix_with_all(env: dict[str, str]) -> None:
    one_line(run_ctq(["status", "nope", "--json"], env), 1, "no job nope")
    assert run_ctq(["status", "nope", "--json"], env).stdout == ""
    one_line(run_ctq(["dlq", "replay", "nope"], env), 1, "no dead letter nope")
    one_line(run_ctq(["dlq", "purge", "nope"], env), 1, "no dead letter nope; nothing was purged")
    one_line(run_ctq(["dlq", "show", "nope"], env), 1, "no dead letter nope")
    one_line(run_ctq(["dlq", "replay", "nope", "--all"], env), 2, "not both")


def test_an_internal_error_is_one_line_and_ctq_debug_shows_its_traceback(
    env: dict[str, str], real_redis: redis.Redis
) -> None:
    # A dead letter ctq did not write (written by hand, or damaged): no command expects that.
    real_redis.hset(keys.DLQ, "job-1", "{not json")
    real_redis.zadd(keys.DLQ_INDEX, {"job-1": 1.0})

    answer = run_ctq(["dlq", "show", "job-1"], env)
    one_line(answer, 1, "(a bug in ctq; CTQ_DEBUG=1 shows where)")
    assert answer.stderr.startswith("ctq: internal error: JSONDecodeError: ")
    assert answer.stdout == ""

    debug = run_ctq(["dlq", "show", "job-1"], {**env, "CTQ_DEBUG": "1"})
    assert debug.returncode == 1 and debug.stdout == ""
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert 'worker/deadletter.py", line' in debug.stderr  # where
    assert debug.stderr.splitlines()[-1].startswith("json.decoder.JSONDecodeError: ")
    assert "internal error" not in debug.stderr
