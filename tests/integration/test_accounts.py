"""Many accounts behind one IP: real workers, a real Redis, the sandbox with three accounts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningSandbox, WorkerProcess, env_for
from tests.helpers import SITE_ID, TEST_TOKEN, run_ctq, wait_for

pytestmark = pytest.mark.integration

SHOP_A = {"site": "1001", "token": "shop-a-token-7d1"}
SHOP_B = {"site": "1002", "token": "shop-b-token-39e"}


def accounts_file(path: Path, **extra: str) -> Path:
    """shop-a's token comes from the environment (token_env), shop-b's from the file."""
    path.write_text(
        f"""
[accounts.shop-a]
site_id = "{SHOP_A["site"]}"
token_env = "SHOP_A_TOKEN"
{extra.get("shop_a", "")}

[accounts.shop-b]
site_id = "{SHOP_B["site"]}"
token = "{SHOP_B["token"]}"
{extra.get("shop_b", "")}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def three_accounts(start_sandbox: Callable[..., RunningSandbox]) -> RunningSandbox:
    return start_sandbox(
        rate=10, sites={SHOP_A["site"]: SHOP_A["token"], SHOP_B["site"]: SHOP_B["token"]}
    )


def env_with_accounts(
    redis_url: str, sandbox: RunningSandbox, tmp_path: Path, **extra: str
) -> dict[str, str]:
    return env_for(
        redis_url,
        sandbox,
        tmp_path / "data",
        CTQ_ACCOUNTS_FILE=str(accounts_file(tmp_path / "accounts.toml", **extra)),
        SHOP_A_TOKEN=SHOP_A["token"],
        CTQ_RATE_LIMIT="10/second",
    )


def enqueue(env: dict[str, str], kind: str, items: list[dict[str, Any]], *args: str) -> list[str]:
    text = "".join(json.dumps(item) + "\n" for item in items)
    done = run_ctq(["enqueue", kind, "--file", "-", *args], env, stdin=text)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def status(env: dict[str, str]) -> dict[str, Any]:
    done = run_ctq(["status", "--json"], env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def callbacks(n: int, first_phone: int) -> list[dict[str, Any]]:
    return [{"routeKey": "rk", "phone": f"7998{first_phone + i:07d}"} for i in range(n)]


def leads(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {"matching": [{"type": "call", "callParams": {"callId": i + 1}}], "addComment": tag}
        for i in range(n)
    ]


def test_each_account_sends_with_its_own_site_and_token(
    redis_url: str,
    three_accounts: RunningSandbox,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path)
    start_worker(env)
    enqueue(env, "callback", callbacks(1, 1))
    enqueue(env, "callback", callbacks(2, 100), "--account", "shop-a")
    enqueue(env, "comment", leads(3, "b"), "--account", "shop-b")

    wait_for(lambda: status(env)["jobs"]["done"] == 4)
    seen = [(r["site_id"], r["token"]) for r in three_accounts.accepted()]
    assert sorted(seen) == [
        (SHOP_A["site"], "valid"),
        (SHOP_A["site"], "valid"),
        (SHOP_B["site"], "valid"),
        (SITE_ID, "valid"),
    ]
    shown = status(env)["accounts"]
    assert {name: a["jobs"]["done"] for name, a in shown.items()} == {
        "default": 1,
        "shop-a": 2,
        "shop-b": 1,
    }
    assert {name: a["site"] for name, a in shown.items()} == {
        "default": SITE_ID,
        "shop-a": SHOP_A["site"],
        "shop-b": SHOP_B["site"],
    }
    log = (tmp_path / "w0.log").read_text()
    assert SHOP_A["token"] not in log and SHOP_B["token"] not in log and TEST_TOKEN not in log


def test_an_unknown_account_is_refused_and_nothing_is_enqueued(
    redis_url: str, three_accounts: RunningSandbox, tmp_path: Path
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path)
    done = run_ctq(
        ["enqueue", "callback", json.dumps(callbacks(1, 1)[0]), "--account", "shop-c"], env
    )
    assert done.returncode == 2
    assert "unknown account 'shop-c'; known: default, shop-a, shop-b" in done.stderr
    assert status(env)["jobs"]["queued"] == 0


def test_a_bad_accounts_file_stops_every_command_naming_the_account(
    redis_url: str, three_accounts: RunningSandbox, tmp_path: Path
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path)
    del env["SHOP_A_TOKEN"]
    done = run_ctq(["status"], env)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "configuration: CTQ_ACCOUNTS_FILE: account 'shop-a': token_env SHOP_A_TOKEN is not set"
    )


def test_a_403_of_one_account_pauses_that_account_only(
    redis_url: str,
    three_accounts: RunningSandbox,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path)
    three_accounts.account(answer={"status": 403, "code": 403}, site_id=SHOP_A["site"])
    start_worker(env)
    enqueue(env, "callback", callbacks(4, 200), "--account", "shop-a")
    enqueue(env, "callback", callbacks(4, 300), "--account", "shop-b")
    enqueue(env, "callback", callbacks(2, 400))

    def settled() -> bool:
        shown = status(env)["accounts"]
        return (
            shown["shop-b"]["jobs"]["done"] == 4
            and shown["default"]["jobs"]["done"] == 2
            and (shown["shop-a"]["jobs"]["paused"] + shown["shop-a"]["jobs"]["delayed"] == 4)
        )

    wait_for(settled, timeout=60)
    shown = status(env)
    assert shown["accounts"]["shop-a"]["paused_lanes"] == ["realtime"]
    assert shown["accounts"]["shop-b"]["paused_lanes"] == []
    assert [(p["site"], p["lane"]) for p in shown["paused"]] == [(SHOP_A["site"], "realtime")]
    assert shown["dead_letters"] == 0
    sent_for_a = [r for r in three_accounts.received() if r["site_id"] == SHOP_A["site"]]
    # The answer that opened the breaker, and at most one more already in flight (-c 2).
    assert 1 <= len(sent_for_a) <= 2


def test_each_account_spends_its_own_budget_and_never_more(
    redis_url: str,
    three_accounts: RunningSandbox,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path, shop_a="daily_points = 3")
    start_worker(env)
    enqueue(env, "callback", callbacks(6, 500), "--account", "shop-a")
    enqueue(env, "callback", callbacks(6, 600), "--account", "shop-b")

    def settled() -> bool:
        shown = status(env)["accounts"]
        return shown["shop-b"]["jobs"]["done"] == 6 and shown["shop-a"]["jobs"]["delayed"] == 3

    wait_for(settled, timeout=60)
    shown = status(env)["accounts"]
    assert shown["shop-a"]["jobs"]["done"] == 3
    assert shown["shop-a"]["points_today"]["used"] == 3
    assert shown["shop-a"]["points_today"]["left"] == 0
    assert shown["shop-b"]["points_today"]["used"] == 6
    assert shown["shop-b"]["points_today"]["budget"] is None
    sent = [r["site_id"] for r in three_accounts.accepted()]
    assert sent.count(SHOP_A["site"]) == 3 and sent.count(SHOP_B["site"]) == 6


def test_a_small_batch_is_not_held_behind_another_accounts_large_one(
    redis_url: str,
    three_accounts: RunningSandbox,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path)
    # Enqueued before any worker runs: first in, first out would send all of shop-a's first.
    enqueue(env, "comment", leads(2_400, "a"), "--account", "shop-a")
    enqueue(env, "comment", leads(300, "b"), "--account", "shop-b")
    start_worker(env)
    start_worker(env)
    wait_for(lambda: status(env)["jobs"]["done"] == 27, timeout=90)

    order = [r["site_id"] for r in three_accounts.accepted()]
    assert len(order) == 27
    last_of_b = max(i for i, site in enumerate(order) if site == SHOP_B["site"])
    # A fair share sends shop-b's 3 requests among the first ~6; FIFO would send them last.
    assert last_of_b < 12, order


def test_the_nightly_run_sends_each_accounts_staged_leads_within_its_own_budget(
    redis_url: str, three_accounts: RunningSandbox, tmp_path: Path
) -> None:
    env = env_with_accounts(redis_url, three_accounts, tmp_path, shop_a="daily_points = 3")
    for account, count in (("shop-a", 500), ("shop-b", 250)):
        text = "".join(json.dumps(lead) + "\n" for lead in leads(count, account))
        staged = run_ctq(["stage", "comment", "--file", "-", "--account", account], env, text)
        assert staged.returncode == 0, staged.stderr
        assert staged.stdout.startswith(f"{count} lead(s) of account {account} staged")
    ran = run_ctq(["nightly", "run", "--json"], env)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    # shop-a: 3 points, 10 % kept for realtime → 2 bulk requests of 100 leads; shop-b: all.
    assert result["accounts"]["shop-a"] == {
        "leads": 200,
        "requests": 2,
        "left_staged": 300,
        "skipped": False,
    }
    assert result["accounts"]["shop-b"]["requests"] == 3
    assert result["accounts"]["shop-b"]["left_staged"] == 0
    shown = status(env)["accounts"]
    assert (shown["shop-a"]["queues"]["bulk"], shown["shop-b"]["queues"]["bulk"]) == (2, 3)
    assert (shown["shop-a"]["staged_leads"], shown["shop-b"]["staged_leads"]) == (300, 0)
