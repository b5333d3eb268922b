"""/metrics and the dashboard's sign-in, refusals and buttons, on the real Redis (the API in
this process; the browser and the workers are in test_dashboard_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from config import Settings
from worker import deadletter, keys, metrics
from worker.breaker import Breaker
from worker.outcome import LastOutcome

pytestmark = pytest.mark.integration

KEY = "dashboard-key-8c1f"
AUTH = {"Authorization": f"Bearer {KEY}"}
SAME_ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def app_client(redis_url: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, REDIS_URL=redis_url, CTQ_API_KEYS=f"other, {KEY}")
    with TestClient(create_app(settings)) as client:
        yield client


def signed_in(client: TestClient) -> TestClient:
    answer = client.post("/login", data={"key": KEY}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    return client


def open_breaker(client: redis.Redis, site: str = "777") -> Breaker:
    breaker = Breaker(client, site, "realtime")
    why = LastOutcome("pause", "http_403", 403, None, "Invalid credentials")
    breaker.open("j1", "account-level: bad credentials", why, 1.0, 300)
    return breaker


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_need_a_key_and_read_the_cluster_from_redis(
    app_client: TestClient, real_redis: redis.Redis
) -> None:
    assert app_client.get("/metrics").status_code == 401
    sent = metrics.Sent("calltouch", "callback", "dead", "realtime", "ctq:limiter:a:b", 0, 0.3)
    metrics.record_sent(real_redis, sent)
    open_breaker(real_redis)
    with real_redis.pipeline() as pipe:
        deadletter.add(pipe, {"id": "d1", "payload": {}}, now=1.0)
        pipe.execute()

    answer = app_client.get("/metrics", headers=AUTH)
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(answer.text)
    labels = (("kind", "callback"), ("outcome", "dead"), ("provider", "calltouch"))
    assert found["ctq_api_requests_total", labels] == 1
    assert found["ctq_permit_wait_seconds_bucket", (("lane", "realtime"), ("le", "0.25"))] == 0
    assert found["ctq_permit_wait_seconds_bucket", (("lane", "realtime"), ("le", "0.5"))] == 1
    assert found["ctq_permit_wait_seconds_count", (("lane", "realtime"),)] == 1
    assert found["ctq_breaker_open", (("lane", "realtime"), ("site", "777"))] == 1
    assert found["ctq_dead_letters", ()] == 1
    assert found["ctq_queue_depth", (("lane", "bulk"),)] == 0
    assert KEY not in answer.text


def test_a_closed_breaker_leaves_the_set_of_open_ones(real_redis: redis.Redis) -> None:
    breaker = open_breaker(real_redis)
    assert real_redis.smembers(keys.BREAKERS) == {breaker.key}
    breaker.close(2.0)
    assert real_redis.smembers(keys.BREAKERS) == set()


def test_the_dashboard_signs_a_browser_in_with_a_key_it_never_shows(
    app_client: TestClient,
) -> None:
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/login"
    refused = app_client.post("/login", data={"key": f"{KEY}-wrong"})
    assert refused.status_code == 401 and "not one of CTQ_API_KEYS" in refused.text
    assert KEY not in refused.text
    answer = app_client.post("/login", data={"key": KEY}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and KEY not in cookie

    page = app_client.get("/")
    assert page.status_code == 200 and "Dead letters" in page.text and KEY not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert app_client.get("/dashboard/live").status_code == 200
    app_client.post("/logout")
    assert app_client.get("/dashboard/live").status_code == 401


def test_a_bearer_key_reads_the_parts_as_the_api_does(app_client: TestClient) -> None:
    assert app_client.get("/dashboard/live").status_code == 401
    assert app_client.get("/dashboard/live", headers=AUTH).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    assert app_client.get("/dashboard/campaigns", headers=wrong).status_code == 401


def test_buttons_refuse_requests_from_other_sites(
    app_client: TestClient, real_redis: redis.Redis
) -> None:
    signed_in(app_client)
    open_breaker(real_redis)
    lane = {"site": "777", "lane": "realtime"}
    other_site = app_client.post(
        "/dashboard/resume", json=lane, headers={"Origin": "http://evil.example"}
    )
    as_form = app_client.post("/dashboard/resume", data=lane, headers=SAME_ORIGIN)
    assert (other_site.status_code, as_form.status_code) == (403, 403)
    assert real_redis.smembers(keys.BREAKERS)  # still open

    resumed = app_client.post("/dashboard/resume", json=lane, headers=SAME_ORIGIN)
    assert resumed.status_code == 200 and resumed.json()["resumed"][0]["site"] == "777"
    assert not real_redis.smembers(keys.BREAKERS)


def test_purge_from_the_page_deletes_the_dead_letter(
    app_client: TestClient, real_redis: redis.Redis
) -> None:
    signed_in(app_client)
    with real_redis.pipeline() as pipe:
        deadletter.add(pipe, {"id": "d1", "kind": "callback", "payload": {}}, now=1.0)
        pipe.execute()
    shown = app_client.get("/dashboard/dead-letters/d1")
    assert shown.json()["id"] == "d1"
    unknown = app_client.post(
        "/dashboard/dead-letters/purge", json={"ids": ["nope"]}, headers=SAME_ORIGIN
    )
    assert unknown.status_code == 404 and deadletter.count(real_redis) == 1
    purged = app_client.post(
        "/dashboard/dead-letters/purge", json={"ids": ["d1"]}, headers=SAME_ORIGIN
    )
    assert purged.json() == {"purged": 1} and deadletter.count(real_redis) == 0


def test_without_keys_the_dashboard_and_metrics_are_open(redis_url: str) -> None:
    settings = Settings(_env_file=None, REDIS_URL=redis_url)
    with TestClient(create_app(settings, require_auth=False)) as client:
        assert client.get("/", follow_redirects=False).status_code == 200
        assert client.get("/metrics").status_code == 200


def test_the_page_and_metrics_are_not_operations_of_the_api_document(
    app_client: TestClient,
) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert not {"/", "/login", "/logout", "/metrics"} & set(paths)
    assert not [p for p in paths if p.startswith("/dashboard")]


def test_accounts_show_on_the_dashboard_and_in_metrics_each_with_its_own_numbers(
    redis_url: str, real_redis: redis.Redis, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.shop-a]\nsite_id = "1001"\ntoken = "t"\nweight = 2\n')
    settings = Settings(
        _env_file=None, REDIS_URL=redis_url, CTQ_ACCOUNTS_FILE=str(accounts), CTQ_API_KEYS=KEY
    )
    real_redis.lpush("bulk.shop-a", "m1", "m2")
    real_redis.hset(keys.account_stats("shop-a"), mapping={"done": 5, "queued": 2})
    open_breaker(real_redis, site="1001")
    with TestClient(create_app(settings)) as client:
        live = client.get("/dashboard/live", headers=AUTH).text
        scraped = samples(client.get("/metrics", headers=AUTH).text)
    assert "<h2>Accounts</h2>" in live and "shop-a" in live
    assert scraped["ctq_account_queue_depth", (("account", "shop-a"), ("lane", "bulk"))] == 2
    assert scraped["ctq_account_jobs", (("account", "shop-a"), ("state", "done"))] == 5
    assert scraped["ctq_account_jobs", (("account", "default"), ("state", "done"))] == 0
    assert scraped["ctq_breaker_open", (("lane", "realtime"), ("site", "1001"))] == 1
    assert scraped["ctq_queue_depth", (("lane", "bulk"),)] == 2
