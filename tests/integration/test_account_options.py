"""What `--account` and `--site` select: a campaign's callbacks go out under its account's
site and token, `ctq resume --site` lifts that site's pause only, `ctq nightly run --account`
sends that account's leads only, and a job whose account a worker does not know waits for a
worker that does. Real workers and beat, a real Redis, the sandbox with three accounts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from tests.conftest import RunningSandbox
from tests.helpers import SITE_ID, WorkerProcess, run_ctq, wait_for
from tests.integration.test_accounts import (
    SHOP_A,
    SHOP_B,
    callbacks,
    enqueue,
    env_with_accounts,
    leads,
    status,
)
from worker import keys

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox3(start_sandbox: Callable[..., RunningSandbox]) -> RunningSandbox:
    """The sandbox knowing shop-a's and shop-b's sites, each with its own token."""
    return start_sandbox(
        rate=10, sites={SHOP_A["site"]: SHOP_A["token"], SHOP_B["site"]: SHOP_B["token"]}
    )


def sent_as(sandbox: RunningSandbox) -> list[tuple[str, str]]:
    """(site id, whether the token was that site's) of every request answered 200."""
    return [(r["site_id"], r["token"]) for r in sandbox.accepted() if r["status"] == 200]


def test_a_campaign_loaded_for_an_account_calls_under_that_accounts_site_and_token(
    redis_url: str,
    sandbox3: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = env_with_accounts(redis_url, sandbox3, tmp_path)
    phones = [f"7999083{n:04d}" for n in range(3)]
    (tmp_path / "calls.jsonl").write_text("".join(json.dumps({"phone": p}) + "\n" for p in phones))
    here = datetime.now(ZoneInfo("Europe/Moscow"))  # a window around now, whatever the hour
    window = f"{here - timedelta(hours=1):%H:%M}-{here + timedelta(hours=1):%H:%M}"
    options = ["--window", window, "--days", "daily", "--per-minute", "60", "--account", "shop-a"]
    calls = str(tmp_path / "calls.jsonl")
    loaded = run_ctq(["campaign", "load", "spring", calls, "--route-key", "rk", *options], env)
    assert loaded.returncode == 0, loaded.stderr
    start_worker(env)
    start_beat(env)

    def shown() -> dict[str, Any]:
        return dict(json.loads(run_ctq(["campaign", "status", "spring", "--json"], env).stdout))

    wait_for(lambda: shown()["done"] == 3, timeout=60, interval=1)
    assert shown()["account"] == "shop-a"
    assert sorted(r["body"]["phone"] for r in sandbox3.accepted()) == phones
    assert sent_as(sandbox3) == [(SHOP_A["site"], "valid")] * 3
    assert status(env)["accounts"]["shop-a"]["jobs"]["done"] == 3


def test_resume_with_a_site_lifts_that_sites_pause_and_the_others_stay_paused(
    redis_url: str,
    sandbox3: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = env_with_accounts(redis_url, sandbox3, tmp_path)  # probes only after 300 s
    for site in (SHOP_A["site"], SHOP_B["site"]):
        sandbox3.account(answer={"status": 403, "code": 403}, site_id=site)
    start_beat(env)
    start_worker(env)
    enqueue(env, "callback", callbacks(3, 700), "--account", "shop-a")
    enqueue(env, "callback", callbacks(3, 800), "--account", "shop-b")

    def held(account: str) -> int:
        jobs = status(env)["accounts"][account]["jobs"]
        return int(jobs["paused"] + jobs["delayed"])

    wait_for(lambda: held("shop-a") == 3 and held("shop-b") == 3, timeout=60)
    # shop-a's token is fixed; shop-b's is not.
    sandbox3.account(answer=None, site_id=SHOP_A["site"])

    resumed = run_ctq(["resume", "--site", SHOP_A["site"]], env)
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert len(lines) == 1, resumed.stdout  # shop-b's lane is not named: not resumed
    pattern = rf"resumed site {SHOP_A['site']} realtime lane \(.*\); (\d+) held job\(s\) requeued"
    found = re.fullmatch(pattern, lines[0])
    assert found, lines[0]
    released = int(found.group(1))
    assert released >= 1
    # The held jobs go out (the probe itself waits its 300 s).
    wait_for(lambda: status(env)["accounts"]["shop-a"]["jobs"]["done"] == released, timeout=30)

    shown = status(env)
    assert [(p["site"], p["lane"]) for p in shown["paused"]] == [(SHOP_B["site"], "realtime")]
    assert shown["accounts"]["shop-b"]["paused_lanes"] == ["realtime"]
    assert shown["accounts"]["shop-a"]["paused_lanes"] == []
    assert held("shop-b") == 3 and shown["accounts"]["shop-b"]["jobs"]["done"] == 0
    assert sent_as(sandbox3) == [(SHOP_A["site"], "valid")] * released


def test_nightly_run_with_an_account_sends_that_accounts_staged_leads_only(
    redis_url: str,
    sandbox3: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    env = env_with_accounts(redis_url, sandbox3, tmp_path)
    for account, count in (("default", 20), ("shop-a", 150), ("shop-b", 50)):
        text = "".join(json.dumps(lead) + "\n" for lead in leads(count, account))
        staged = run_ctq(["stage", "comment", "--file", "-", "--account", account], env, text)
        assert staged.returncode == 0, staged.stderr

    ran = run_ctq(["nightly", "run", "--account", "shop-a", "--json"], env)
    assert ran.returncode == 0, ran.stderr
    only_a = {"leads": 150, "requests": 2, "left_staged": 0, "skipped": False}
    assert json.loads(ran.stdout) == {**only_a, "accounts": {"shop-a": only_a}}

    start_worker(env)
    wait_for(lambda: status(env)["accounts"]["shop-a"]["jobs"]["done"] == 2, timeout=60)
    assert sent_as(sandbox3) == [(SHOP_A["site"], "valid")] * 2
    commented = [c["addComment"] for r in sandbox3.accepted() for c in r["body"]["comments"]]
    assert commented == ["shop-a"] * 150
    shown = status(env)["accounts"]
    assert {name: a["staged_leads"] for name, a in shown.items()} == {
        "default": 20,
        "shop-a": 0,
        "shop-b": 50,
    }
    assert shown["default"]["queues"]["bulk"] == shown["shop-b"]["queues"]["bulk"] == 0


def test_a_job_of_an_account_the_worker_does_not_know_waits_queued_for_a_worker_that_does(
    redis_url: str,
    sandbox3: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    env = {**env_with_accounts(redis_url, sandbox3, tmp_path), "CTQ_LOST_MESSAGE_AFTER": "3"}
    without_file = {k: v for k, v in env.items() if k != "CTQ_ACCOUNTS_FILE"}
    [job_id] = enqueue(env, "callback", callbacks(1, 900), "--account", "shop-a")
    [other_id] = enqueue(env, "callback", callbacks(1, 901))  # the default account's
    start_worker(without_file)
    wait_for(lambda: status(env)["jobs"]["done"] == 1, timeout=30)
    # Once the job is older than CTQ_LOST_MESSAGE_AFTER, a whole sweep of lost messages runs
    # (it writes its cursor each time) and leaves the job where it is.
    time.sleep(3.5)
    client = redis.Redis.from_url(redis_url)
    client.delete(keys.LOST_SWEEP_CURSOR)
    wait_for(lambda: client.exists(keys.LOST_SWEEP_CURSOR), timeout=30)

    def job() -> dict[str, Any]:
        shown = run_ctq(["status", job_id, "--json"], env)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))

    assert job()["state"] == "queued" and job()["attempts"] == 0
    shown = status(env)
    assert shown["dead_letters"] == 0
    assert shown["accounts"]["shop-a"]["queues"]["realtime"] == 1
    assert sent_as(sandbox3) == [(SITE_ID, "valid")]
    assert json.loads(run_ctq(["status", other_id, "--json"], env).stdout)["state"] == "done"

    start_worker(env)  # with the accounts file
    wait_for(lambda: job()["state"] == "done", timeout=30)
    assert job()["attempts"] == 1
    assert sent_as(sandbox3) == [(SITE_ID, "valid"), (SHOP_A["site"], "valid")]
    assert status(env)["dead_letters"] == 0
