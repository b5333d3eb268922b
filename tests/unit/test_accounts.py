"""Accounts: the file, its refusals, names on the way in, and the queues a worker takes from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from config import Settings
from config.settings import UnknownAccount
from tasks.producer import Producer
from tasks.validation import JobValidationError
from worker import jobstore, keys
from worker.broker import LaneCycle


def settings_with(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return Settings(_env_file=None, CTQ_ACCOUNTS_FILE=str(path), **env)  # type: ignore[call-arg]


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        settings_with(tmp_path, text)
    [error] = caught.value.errors()
    return str(error["msg"]).removeprefix("Value error, ")


def test_accounts_come_from_the_file_and_default_from_the_calltouch_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_A_TOKEN", "from-the-environment")
    settings = settings_with(
        tmp_path,
        '[accounts.shop-a]\nsite_id = "1001"\ntoken_env = "SHOP_A_TOKEN"\ndaily_points = 50\n'
        '[accounts.shop-b]\nsite_id = "1002"\ntoken = "in-the-file"\nweight = 3\n',
        CALLTOUCH_SITE_ID="777",
        CTQ_DAILY_POINTS="900",
    )
    assert list(settings.accounts) == ["default", "shop-a", "shop-b"]
    shop_a, shop_b = settings.account("shop-a"), settings.account("shop-b")
    assert shop_a.token and shop_a.token.get_secret_value() == "from-the-environment"
    assert (shop_a.site, shop_a.daily_points, shop_a.weight) == ("1001", 50, 1)
    assert (shop_b.site, shop_b.daily_points, shop_b.weight) == ("1002", 900, 3)
    assert settings.account(None).site == "777"
    assert "in-the-file" not in repr(settings.accounts)  # tokens are secrets


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[accounts.a]\nsite_id = "1"\n', "account 'a': set exactly one of token and token_env"),
        (
            '[accounts.a]\nsite_id = "1"\ntoken_env = "NOT_SET_ANYWHERE"\n',
            "account 'a': token_env NOT_SET_ANYWHERE is not set",
        ),
        ('[accounts.a]\nsite_id = "x1"\ntoken = "t"\n', "account 'a': site_id: String should"),
        ('[accounts.a]\nsite_id = 1\ntoken = "t"\n', "account 'a': site_id: Input should be"),
        ('[accounts.a]\nsite_id = "1"\ntoken = "t"\nbudget = 5\n', "account 'a': budget: Extra"),
        ('[accounts.a]\nsite_id = "1"\ntoken = "t"\nweight = 0\n', "account 'a': weight: Input"),
        ('[accounts.default]\nsite_id = "1"\ntoken = "t"\n', "account 'default': 'default' is"),
        ('[accounts.Shop_A]\nsite_id = "1"\ntoken = "t"\n', "account 'Shop_A': a name is 1-40"),
        (
            '[accounts.a]\nsite_id = "1"\ntoken = "t"\n[accounts.b]\nsite_id = "1"\ntoken = "u"\n',
            "account 'b': site_id 1 is also account 'a''s; each account is its own site",
        ),
        ('[accounts.a]\nsite_id = "1"\ntoken = " \\n"\n', "account 'a': token is empty"),
        (
            '[accounts.a]\nsite_id = "1"\ntoken = "tok\\u00a0en"\n',
            "account 'a': the token has a character an HTTP header cannot carry",
        ),
        ("[accounts.a\n", "is not valid TOML"),
        ('[shops.a]\nsite_id = "1"\n', "unknown table(s) ['shops']"),
    ],
)
def test_a_bad_accounts_file_is_refused_naming_the_account_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    message = refusal(tmp_path, text)
    assert message.startswith("CTQ_ACCOUNTS_FILE: ")
    assert reason in message


def test_a_token_pasted_with_blanks_around_it_is_used_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_A_TOKEN", "read-from-a-file\n")
    settings = settings_with(
        tmp_path,
        '[accounts.shop-a]\nsite_id = "1001"\ntoken_env = "SHOP_A_TOKEN"\n'
        '[accounts.shop-b]\nsite_id = "1002"\ntoken = " pasted-token\\n"\n',
        CALLTOUCH_TOKEN="default-token\n",
    )
    tokens = [a.token.get_secret_value() for a in settings.accounts.values() if a.token]
    assert tokens == ["default-token", "read-from-a-file", "pasted-token"]


def test_a_missing_accounts_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"CTQ_ACCOUNTS_FILE: cannot read .*nowhere\.toml"):
        Settings(_env_file=None, CTQ_ACCOUNTS_FILE=str(tmp_path / "nowhere.toml"))  # type: ignore[call-arg]


def test_an_unknown_account_name_is_invalid_input() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(UnknownAccount, match="unknown account 'shop-z'; known: default"):
        settings.account("shop-z")
    assert UnknownAccount.exit_status == 2


def test_each_account_has_its_own_queues_and_default_keeps_the_lane_names() -> None:
    assert keys.consume_order(["default", "shop-a"]) == [
        "maintenance",
        "realtime",
        "realtime.shop-a",
        "bulk",
        "bulk.shop-a",
    ]
    assert keys.lane_of("bulk.shop-a") == "bulk"


def test_a_worker_takes_lane_by_lane_and_the_accounts_of_a_lane_in_turn() -> None:
    cycle = LaneCycle()
    cycle.update(keys.consume_order(["default", "shop-a", "shop-b"]))
    assert cycle.consume(7)[:4] == ["maintenance", "realtime", "realtime.shop-a", "realtime.shop-b"]
    cycle.rotate("bulk")  # a message was taken from the default account's bulk queue
    assert cycle.consume(7)[4:] == ["bulk.shop-a", "bulk.shop-b", "bulk"]
    cycle.rotate("realtime.shop-a")
    assert cycle.consume(7)[:4] == ["maintenance", "realtime", "realtime.shop-b", "realtime.shop-a"]


@pytest.fixture
def producer(redis_url: str, tmp_path: Path) -> Iterator[Producer]:
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.shop-a]\nsite_id = "1001"\ntoken = "t"\n', encoding="utf-8")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path), CTQ_ACCOUNTS_FILE=str(path)
    )
    with Producer(settings) as made:
        yield made


def test_an_accounts_jobs_go_on_its_queues_with_idempotency_keys_of_its_own(
    producer: Producer, real_redis: redis.Redis
) -> None:
    callback = {"routeKey": "rk", "phone": "79991112233"}
    [default_id] = producer.from_json_lines("callback", json.dumps(callback), idempotency_key="k")
    [shop_id] = producer.from_json_lines(
        "callback", json.dumps(callback), idempotency_key="k", account="shop-a"
    )
    assert shop_id != default_id  # the same key, another account: another job
    again = producer.from_json_lines(
        "callback", json.dumps(callback), idempotency_key="k", account="shop-a"
    )
    assert list(again) == [shop_id] and again.reused == 1
    assert (real_redis.llen("realtime"), real_redis.llen("realtime.shop-a")) == (1, 1)
    assert real_redis.hget(keys.job(shop_id), "account") == "shop-a"
    assert jobstore.counts(real_redis, "shop-a")["queued"] == 1


def test_a_pozvonim_call_belongs_to_no_calltouch_account(
    producer: Producer, real_redis: redis.Redis
) -> None:
    call = {"provider": "pozvonim", "phone": "79991112233", "site_id": 5}
    with pytest.raises(JobValidationError, match="line 1: provider: a pozvonim job belongs"):
        producer.from_json_lines("callback", json.dumps(call), account="shop-a")
    assert real_redis.llen("realtime") == 0 and real_redis.llen("realtime.shop-a") == 0
