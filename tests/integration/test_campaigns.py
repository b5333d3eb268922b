"""Autodial campaigns: loading, windows on a fixed clock, pace, pause and resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from config import Settings
from scheduler import campaigns
from scheduler.campaigns import Campaign
from tasks.models import CallbackJob
from tasks.producer import Producer
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, run_ctq, wait_for
from worker import jobstore, keys

pytestmark = pytest.mark.integration


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Producer:
    return Producer(Settings(_env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)))


def rows(count: int, first: int = 79_990_800_000) -> list[CallbackJob]:
    return [CallbackJob(routeKey="rk", phone=str(first + n)) for n in range(count)]


def campaign(
    name: str,
    window: str = "00:00-23:59",
    days: str = "daily",
    tz: str = "Europe/Moscow",
    per_minute: int = 5,
) -> Campaign:
    return Campaign(name, "rk", window, days, tz, per_minute, campaigns.Lifecycle.ACTIVE)


def at(text: str, tz: str = "Europe/Moscow") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def test_bad_rows_refuse_the_load_unless_skip_invalid_writes_them_out(
    redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    csv = tmp_path / "calls.csv"
    csv.write_text("phone,tags,utmSource\n79991234567,a|b,mail\n88001234567,,\n79991234568,,\n")
    refused = run_ctq(["campaign", "load", "spring", str(csv), "--route-key", "rk"], env)
    assert refused.returncode == 2
    assert "line 3: phone: must be 11 digits 7xxxxxxxxxx" in refused.stderr
    assert run_ctq(["campaign", "list"], env).stdout.strip() == "no campaigns"

    loaded = run_ctq(
        ["campaign", "load", "spring", str(csv), "--route-key", "rk", "--skip-invalid"], env
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "campaign spring: 2 callback(s) loaded" in loaded.stdout
    assert "validating [" not in loaded.stderr  # the progress bar is for terminals only
    [reject] = [
        json.loads(line) for line in (tmp_path / "calls.csv.rejects.jsonl").read_text().splitlines()
    ]
    assert reject["line"] == 3 and reject["row"]["phone"] == "88001234567"
    assert reject["problems"][0].startswith("phone: must be 11 digits")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    first = json.loads(client.lindex(f"{keys.campaign('spring')}:rows", 0) or "{}")
    assert first == {
        "routeKey": "rk",
        "phone": "79991234567",
        "utmSource": "mail",
        "tags": ["a", "b"],
    }


def test_a_window_crossing_midnight_is_kept_in_each_campaigns_timezone(producer: Producer) -> None:
    campaigns.load(producer, campaign("moscow", "21:00-02:00", "fri", "Europe/Moscow"), rows(3))
    campaigns.load(
        producer,
        campaign("vladivostok", "21:00-02:00", "fri", "Asia/Vladivostok"),
        rows(3, 79_990_810_000),
    )
    # Saturday 00:30 in Vladivostok (inside Friday's window) is Friday 17:30 in Moscow.
    released = campaigns.release_due(producer, at("2026-11-28 00:30", "Asia/Vladivostok"), 600)
    assert released == {"vladivostok": 3}
    # Friday 23:00 in Moscow is Saturday 06:00 in Vladivostok: only Moscow is open.
    assert campaigns.release_due(producer, at("2026-11-27 23:00"), 600) == {"moscow": 3}


def test_callbacks_are_released_at_the_campaigns_pace_and_pause_and_resume(
    producer: Producer,
) -> None:
    campaigns.load(producer, campaign("pace", per_minute=5), rows(12))
    t0 = at("2030-03-04 10:00")
    assert campaigns.release_due(producer, t0, 600) == {"pace": 5}  # one minute's worth
    assert campaigns.release_due(producer, at("2030-03-04 10:00:30"), 600) == {"pace": 2}
    campaigns.set_state(producer.redis, "pace", campaigns.Lifecycle.PAUSED)
    assert campaigns.release_due(producer, at("2030-03-04 10:05"), 600) == {}
    campaigns.set_state(producer.redis, "pace", campaigns.Lifecycle.ACTIVE)
    assert campaigns.release_due(producer, at("2030-03-04 10:06"), 600) == {"pace": 5}
    shown = campaigns.status(producer.redis, "pace", at("2030-03-04 10:06"))
    assert {k: shown[k] for k in ("loaded", "released", "done", "failed", "left")} == {
        "loaded": 12,
        "released": 12,
        "done": 0,
        "failed": 0,
        "left": 0,
    }
    assert producer.redis.llen(keys.REALTIME) == 12  # real callback jobs


def test_the_same_phone_is_not_called_again_within_the_minimum_interval(
    producer: Producer,
) -> None:
    same = [CallbackJob(routeKey="rk", phone="79991230000")] * 2
    campaigns.load(producer, campaign("twice"), same)
    assert campaigns.release_due(producer, at("2030-03-04 10:00"), 600) == {"twice": 1}
    shown = campaigns.status(producer.redis, "twice", at("2030-03-04 10:00"))
    assert shown["left"] == 1 and shown["eta"] is not None


def test_status_eta_counts_only_open_window_minutes(producer: Producer) -> None:
    campaigns.load(producer, campaign("eta", "09:00-10:00", "mon-fri", per_minute=10), rows(600))
    shown = campaigns.status(producer.redis, "eta", at("2030-03-04 09:00"))  # a Monday
    assert shown["eta"] == "2030-03-04 09:59 MSK"  # 60 open minutes × 10
    later = campaigns.status(producer.redis, "eta", at("2030-03-08 09:30"))  # Friday
    assert later["eta"] == "2030-03-11 09:29 MSK"  # continues Monday


def test_cancel_drops_the_rows_not_released(producer: Producer, tmp_path: Path) -> None:
    campaigns.load(producer, campaign("gone"), rows(4))
    campaigns.set_state(producer.redis, "gone", campaigns.Lifecycle.CANCELLED)
    assert campaigns.release_due(producer, at("2030-03-04 10:00"), 600) == {}
    assert campaigns.status(producer.redis, "gone", at("2030-03-04 10:00"))["left"] == 0


def test_campaign_commands(redis_url: str, sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    jsonl = tmp_path / "calls.jsonl"
    jsonl.write_text('{"phone": "79991234567"}\n{"phone": "79991234568", "tags": ["vip"]}\n')
    loaded = run_ctq(
        [
            "campaign",
            "load",
            "night",
            str(jsonl),
            "--route-key",
            "rk",
            "--window",
            "21:00-02:00",
            "--days",
            "daily",
            "--timezone",
            "Asia/Vladivostok",
            "--per-minute",
            "30",
        ],
        env,
    )
    assert "window 21:00-02:00 daily Asia/Vladivostok, 30 a minute" in loaded.stdout
    shown = run_ctq(["campaign", "status", "night"], env).stdout
    assert "loaded 2  released 0  done 0  failed 0  left 2" in shown
    assert run_ctq(["campaign", "pause", "night"], env).stdout.strip() == "campaign night: paused"
    assert "paused" in run_ctq(["campaign", "list"], env).stdout
    assert run_ctq(["campaign", "resume", "night"], env).stdout.strip() == "campaign night: active"
    assert run_ctq(["campaign", "cancel", "night"], env).returncode == 0
    assert json.loads(run_ctq(["campaign", "status", "night", "--json"], env).stdout)["left"] == 0
    assert run_ctq(["campaign", "status", "nope"], env).returncode == 1
    bad = run_ctq(
        ["campaign", "load", "x", str(jsonl), "--route-key", "rk", "--window", "9-5"], env
    )
    assert bad.returncode == 2 and "HH:MM-HH:MM" in bad.stderr


def test_beat_releases_a_loaded_campaign_to_real_workers(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    tmp_path: Path,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    jsonl = tmp_path / "calls.jsonl"
    phones = [f"7999082{n:04d}" for n in range(6)]
    jsonl.write_text("".join(json.dumps({"phone": p}) + "\n" for p in phones))
    here = datetime.now(ZoneInfo("Europe/Moscow"))  # a window around now, whatever the hour
    window = f"{here - timedelta(hours=1):%H:%M}-{here + timedelta(hours=1):%H:%M}"
    run_ctq(
        [
            "campaign",
            "load",
            "now",
            str(jsonl),
            "--route-key",
            "rk",
            "--window",
            window,
            "--days",
            "daily",
            "--per-minute",
            "60",
        ],
        env,
    )
    start_worker(env)
    start_beat(env)
    wait_for(
        lambda: (
            json.loads(run_ctq(["campaign", "status", "now", "--json"], env).stdout)["done"] == 6
        ),
        timeout=60,
        interval=1,
    )
    assert sorted(r["body"]["phone"] for r in sandbox.accepted()) == phones


def test_a_campaign_whose_jobs_have_all_finished_is_finished_and_its_name_free_again(
    producer: Producer, redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    campaigns.load(producer, campaign("spring"), rows(2))
    assert campaigns.release_due(producer, at("2030-03-04 10:00"), 600) == {"spring": 2}
    assert "spring               active" in run_ctq(["campaign", "list"], env).stdout
    for job_id in producer.redis.lrange(f"{keys.campaign('spring')}:jobs", 0, -1):
        jobstore.transition(producer.redis, str(job_id), jobstore.State.DONE, keep_seconds=60)

    assert (
        "spring               finished  loaded 2  left 0"
        in run_ctq(["campaign", "list"], env).stdout
    )
    shown = json.loads(run_ctq(["campaign", "status", "spring", "--json"], env).stdout)
    assert (shown["state"], shown["done"]) == ("finished", 2)
    paused = run_ctq(["campaign", "pause", "spring"], env)
    assert (paused.returncode, paused.stderr) == (2, "ctq: campaign 'spring' is finished\n")

    jsonl = tmp_path / "again.jsonl"
    jsonl.write_text('{"phone": "79991234567"}\n')
    again = run_ctq(["campaign", "load", "spring", str(jsonl), "--route-key", "rk"], env)
    assert again.returncode == 0, again.stderr
    shown = json.loads(run_ctq(["campaign", "status", "spring", "--json"], env).stdout)
    assert (shown["state"], shown["loaded"], shown["released"], shown["left"]) == (
        "active",
        1,
        0,
        1,
    )
    refused = run_ctq(["campaign", "load", "spring", str(jsonl), "--route-key", "rk"], env)
    assert refused.returncode == 2 and "campaign 'spring' exists (active)" in refused.stderr


def test_only_a_finished_or_cancelled_campaign_is_deleted(
    producer: Producer, redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    campaigns.load(producer, campaign("summer"), rows(3))
    active = run_ctq(["campaign", "delete", "summer"], env)
    assert active.returncode == 2
    assert active.stderr == (
        "ctq: campaign 'summer' is active: cancel it first, or wait until it has finished\n"
    )
    assert run_ctq(["campaign", "cancel", "summer"], env).returncode == 0
    deleted = run_ctq(["campaign", "delete", "summer"], env)
    assert (deleted.returncode, deleted.stdout) == (0, "campaign summer: deleted\n")
    assert run_ctq(["campaign", "list"], env).stdout == "no campaigns\n"
    assert producer.redis.keys(f"{keys.campaign('summer')}*") == []

    for action in ("status", "delete", "pause"):
        unknown = run_ctq(["campaign", action, "summer"], env)
        assert (unknown.returncode, unknown.stdout) == (1, "")
        assert unknown.stderr == "ctq: no campaign 'summer'\n"


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.csv", ""), ("header.csv", "phone,tags\n"), ("blank.jsonl", "\n\n")],
)
def test_a_campaign_file_without_rows_is_refused(
    name: str, content: str, redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    (tmp_path / name).write_text(content)
    refused = run_ctq(["campaign", "load", "x", str(tmp_path / name), "--route-key", "rk"], env)
    assert refused.returncode == 2
    assert refused.stderr == (
        "ctq: the file has no rows (empty, or a header only); nothing was loaded\n"
    )
    assert run_ctq(["campaign", "list"], env).stdout == "no campaigns\n"


def test_a_duplicate_csv_header_is_refused_and_a_bom_accepted_in_jsonl_as_in_csv(
    redis_url: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data")
    twice = tmp_path / "twice.csv"
    twice.write_text("phone,utmSource, phone\n79991234567,a,79991234568\n")
    refused = run_ctq(["campaign", "load", "x", str(twice), "--route-key", "rk"], env)
    assert (refused.returncode, refused.stderr) == (
        2,
        "ctq: line 1: duplicate header 'phone'; nothing was loaded\n",
    )
    for name, text in (
        ("bom.jsonl", '{"phone": "79991234567"}\n'),
        ("bom.csv", "phone\n79991234567\n"),
    ):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        loaded = run_ctq(["campaign", "load", name, str(tmp_path / name), "--route-key", "rk"], env)
        assert loaded.returncode == 0, loaded.stderr
        assert f"campaign {name}: 1 callback(s) loaded" in loaded.stdout
