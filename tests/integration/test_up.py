"""`ctq up` on an embedded Redis and the sandbox: the Quick start path."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT, ctq_env, run_ctq, stop_process_group, wait_for
from worker import embedded_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short on purpose: the embedded Redis listens on a unix socket inside it.
    path = Path(tempfile.mkdtemp(prefix="ctq-"))
    yield path / ".ctq"
    embedded_redis.stop(path / ".ctq")
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started_for(data_dir: Path) -> list[int]:
    """Pids of live processes whose environment names this data dir."""
    marker = f"CTQ_DATA_DIR={data_dir}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0") and alive(int(environ.parent.name)):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``ctq up`` in its own session (as a terminal would run it), logging to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--sandbox-port", "0"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_up_runs_the_stack_and_ctrl_c_stops_all_of_it(data_dir: Path) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir))
    log = data_dir.parent / "up.log"
    up = start_up(env, log)
    try:
        wait_for(lambda: "ready." in log.read_text() or up.poll() is not None, timeout=60)
        banner = log.read_text()
        assert "ctq is up" in banner and "sandbox  http://127.0.0.1:" in banner, banner
        redis_pid = embedded_redis.pid(data_dir)
        child_pids = [int(p) for p in re.findall(r"(?:worker|beat|http-api)\s+pid (\d+)", banner)]
        assert redis_pid and len(child_pids) == 3
        [(api_url, api_key)] = re.findall(r"http-api (http://127\.0\.0\.1:\d+)  key (\S+)", banner)
        wait_for(lambda: _api_answers(api_url), timeout=30)
        status = requests.get(
            f"{api_url}/v1/status", headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        )
        assert status.status_code == 200, "the banner's key opens the API"

        done = run_ctq(["enqueue", "callback", '{"routeKey": "rk", "phone": "79991234567"}'], env)
        assert done.returncode == 0, done.stderr

        def finished() -> bool:
            answer = run_ctq(["status", "--json"], env)
            return json.loads(answer.stdout)["jobs"]["done"] == 1

        wait_for(finished, timeout=30)

        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C does to the terminal's process group
        assert up.wait(60) == 0
        assert "ctq is down" in log.read_text()
        assert not any(alive(pid) for pid in [redis_pid, *child_pids])
        assert started_for(data_dir) == []
    finally:
        stop_process_group(up)


def test_without_a_stack_commands_say_so_and_start_no_redis(data_dir: Path) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir))
    for command in (
        ["enqueue", "pool-update", '{"phoneNumber": "74950000001", "poolName": "p"}'],
        ["status"],
        ["dlq", "list"],
    ):
        answer = run_ctq(command, env)
        assert answer.returncode == 3 and answer.stdout == "", answer.stderr
        assert f"no ctq stack in {data_dir}" in answer.stderr and "make run" in answer.stderr
        assert "Traceback" not in answer.stderr
    assert not embedded_redis.is_running(data_dir) and started_for(data_dir) == []


def wait_up(up: subprocess.Popen[bytes], log: Path) -> str:
    wait_for(lambda: "ready." in log.read_text() or up.poll() is not None, timeout=60)
    banner = log.read_text()
    assert "ctq is up" in banner, banner
    return banner


def test_a_second_up_in_the_same_directory_refuses_and_leaves_the_first_running(
    data_dir: Path,
) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir))
    first = start_up(env, data_dir.parent / "first.log")
    try:
        wait_up(first, data_dir.parent / "first.log")
        second = start_up(env, data_dir.parent / "second.log")
        assert second.wait(60) == 1
        said = (data_dir.parent / "second.log").read_text()
        assert f"a ctq stack already runs in {data_dir} (ctq up, pid {first.pid})" in said
        assert "ctq is up" not in said and "Traceback" not in said

        done = run_ctq(["enqueue", "callback", '{"routeKey": "rk", "phone": "79991234567"}'], env)
        assert done.returncode == 0, done.stderr  # the first stack's Redis still runs
        assert first.poll() is None
    finally:
        stop_process_group(first)


def test_ctrl_c_lets_the_jobs_in_flight_finish_before_the_sandbox_stops(data_dir: Path) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir))
    log = data_dir.parent / "up.log"
    up = start_up(env, log)
    try:
        banner = wait_up(up, log)
        sandbox = re.search(r"sandbox  (http://127\.0\.0\.1:\d+)", banner)
        assert sandbox, banner
        slow = json.dumps({"min": 3.0, "max": 3.0}).encode()
        urllib.request.urlopen(f"{sandbox[1]}/_sandbox/latency", data=slow, timeout=10).close()
        phones = [f"7999123450{n}" for n in range(3)]
        lines = "\n".join(json.dumps({"routeKey": "rk", "phone": p}) for p in phones)
        (data_dir.parent / "calls.jsonl").write_text(lines + "\n")
        enqueued = run_ctq(
            ["enqueue", "callback", "--file", str(data_dir.parent / "calls.jsonl")], env
        )
        assert enqueued.returncode == 0, enqueued.stderr
        job_ids = enqueued.stdout.split()

        def running() -> int:
            return int(json.loads(run_ctq(["status", "--json"], env).stdout)["jobs"]["running"])

        wait_for(lambda: running() == 3, timeout=30)
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C while the sandbox holds all three requests
        assert up.wait(90) == 0
        said = log.read_text()
        for job_id in job_ids:
            assert f"job {job_id} callback done: http_2xx HTTP 200" in said, said[-3000:]
        assert " retry: " not in said
    finally:
        stop_process_group(up)


def test_sigterm_during_start_up_still_stops_everything(data_dir: Path) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir))
    log = data_dir.parent / "up.log"
    up = start_up(env, log)
    try:
        wait_for(lambda: embedded_redis.pid(data_dir) or up.poll() is not None, interval=0.01)
        redis_pid = embedded_redis.pid(data_dir)
        up.send_signal(signal.SIGTERM)  # while it is still starting
        assert up.wait(60) == 0
        assert "ctq is down" in log.read_text()
        assert redis_pid and not alive(redis_pid)
        assert started_for(data_dir) == []  # nothing it started is left
    finally:
        stop_process_group(up)


def _api_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.ConnectionError:
        return False


def test_in_json_mode_every_line_is_an_object_and_the_api_key_is_in_a_file(
    data_dir: Path,
) -> None:
    env = ctq_env(CTQ_DATA_DIR=str(data_dir), CTQ_LOG_FORMAT="json")
    log = data_dir.parent / "up.log"
    up = start_up(env, log)
    try:
        wait_for(lambda: "ready." in log.read_text() or up.poll() is not None, timeout=60)
        said = [json.loads(line)["message"] for line in log.read_text().splitlines()]
        [api_line] = [line for line in said if line.startswith("http-api http")]
        [(api_url, key_file)] = re.findall(r"http-api (http://\S+)  key in (\S+)", api_line)
        assert Path(key_file).stat().st_mode & 0o777 == 0o600
        key = Path(key_file).read_text().strip()
        wait_for(lambda: _api_answers(api_url), timeout=30)
        sent = requests.post(
            f"{api_url}/v1/jobs/callback",
            json={"routeKey": "rk", "phone": "79991234567"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        [job_id] = sent.json()["job_ids"]
        wait_for(lambda: f"job {job_id} callback done" in log.read_text(), timeout=30)
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(60) == 0
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        loggers = {line["logger"] for line in lines}
        assert {"ctq", "celery.apps.worker", "celery.beat", "uvicorn.access"} <= loggers
        [outcome] = [line for line in lines if line.get("job_id") == job_id]
        assert (outcome["kind"], outcome["outcome"]) == ("callback", "done")
        assert key not in log.read_text()
        assert not Path(key_file).exists()  # the run's key ends with the run
    finally:
        stop_process_group(up)
