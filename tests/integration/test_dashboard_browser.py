"""The dashboard in a real browser (Debian's headless Chromium, driven by Selenium through
its chromedriver) against a running stack with traffic: it signs in, its numbers are those
of `GET /v1/status`, and Resume and Replay work from the page. A screenshot is written to
the test's directory."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.api_process import ApiProcess
from tests.conftest import RunningSandbox, env_for
from tests.helpers import WorkerProcess, wait_for
from worker import jobstore

pytestmark = pytest.mark.integration

KEY = "browser-test-key-93ab"
AUTH = {"Authorization": f"Bearer {KEY}"}
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
# Numbers the page must show (and the test compare), besides each limiter's 429s and margin.
REQUIRED = {"/queues/realtime", "/queues/bulk", "/jobs/done", "/jobs/paused", "/dead_letters"}
REQUIRED |= {"/points_today/777/used", "/in_flight"}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "no Chromium: the browser test needs Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,2200",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def post(api: ApiProcess, body: Any) -> str:
    answer = requests.post(f"{api.url}/v1/jobs/callback", headers=AUTH, json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_ids"][0])


def status(api: ApiProcess) -> dict[str, Any]:
    return dict(requests.get(f"{api.url}/v1/status", headers=AUTH, timeout=10).json())


def resolve(document: Any, pointer: str) -> Any:
    """RFC 6901: ``/limiters/default:127.0.0.1:80/http_429``, ``/paused/0/held``."""
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def mismatches(driver: WebDriver, api: ApiProcess) -> list[str]:
    """Every number the page tags with its place in `/v1/status` that differs from it."""
    try:
        shown = [
            (e.get_attribute("data-status"), e.text.strip())
            for e in driver.find_elements(By.CSS_SELECTOR, "[data-status]")
        ]
        counted = [
            (e.get_attribute("data-status-count"), e.text.strip())
            for e in driver.find_elements(By.CSS_SELECTOR, "[data-status-count]")
        ]
    except StaleElementReferenceException:  # read during a refresh
        return ["(page refreshing)"]
    truth = status(api)
    wrong = [
        f"{p}: page {v}, status {resolve(truth, p)}"
        for p, v in shown
        if p and not same(v, resolve(truth, p))
    ]
    wrong += [f"{p}: page {v}" for p, v in counted if p and int(v) != len(resolve(truth, p))]
    tagged = {p for p, _ in shown}
    assert tagged >= REQUIRED and [p for p in tagged if p and p.endswith("/http_429")], tagged
    return wrong


def same(text: str, value: Any) -> bool:
    return float(text) == float(value) if isinstance(value, int | float) else text == str(value)


def click(driver: WebDriver, selector: str) -> None:
    """Click the first match; the live part is redrawn every 2 s, so look it up again if the
    element was replaced between finding and clicking it."""

    def clicked() -> bool:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            if found:
                found[0].click()
            return bool(found)
        except StaleElementReferenceException:
            return False

    wait_for(clicked, timeout=10)


def flash(driver: WebDriver, starts: str) -> str:
    return str(
        wait_for(
            lambda: (t := driver.find_element(By.ID, "flash").text).startswith(starts) and t,
            timeout=15,
        )
    )


def test_the_dashboard_shows_the_stack_and_its_buttons_work(
    redis_url: str,
    sandbox: RunningSandbox,
    start_worker: Callable[..., WorkerProcess],
    start_beat: Callable[..., Any],
    start_api: Callable[..., ApiProcess],
    browser: WebDriver,
    tmp_path: Path,
) -> None:
    env = env_for(redis_url, sandbox, tmp_path / "data", CTQ_API_KEYS=KEY)
    start_beat(env)
    start_worker(env)
    api = start_api(env)
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def counts() -> dict[str, int]:
        return jobstore.counts(client)

    for n in range(4):
        post(api, {"routeKey": "rk", "phone": f"7999060{n:04d}"})
    wait_for(lambda: counts()["done"] == 4, timeout=60)
    sandbox.account(answer={"status": 400, "code": 10003})  # no widget: a dead letter
    dead_id = post(api, {"routeKey": "rk", "phone": "79990609999"})
    wait_for(lambda: counts()["dead"] == 1, timeout=60)
    sandbox.account(answer={"status": 403, "code": 403})  # a revoked token: the breaker opens
    for n in range(3):
        post(api, {"routeKey": "rk", "phone": f"7999061{n:04d}"})
    wait_for(lambda: counts()["paused"] >= 1 and counts()["paused"] + counts()["delayed"] == 3)
    sandbox.account(answer=None)
    held = counts()["paused"]

    browser.get(f"{api.url}/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: browser.find_elements(By.ID, "live"), timeout=15)
    assert KEY not in browser.page_source
    wait_for(lambda: "updated" in browser.find_element(By.ID, "updated").text, timeout=15)
    wait_for(lambda: not mismatches(browser, api), timeout=15, interval=0.5)
    browser.save_screenshot(str(tmp_path / "dashboard-paused.png"))

    click(browser, 'button[data-action="resume"][data-site="777"][data-lane="realtime"]')
    assert f"{held} held job(s) sent again" in flash(browser, "Resumed site 777 realtime lane")
    wait_for(lambda: counts()["done"] == 4 + held, timeout=60)
    wait_for(lambda: "No lane is paused." in browser.find_element(By.ID, "paused").text)
    assert status(api)["paused"] == []

    click(browser, f'button[data-action="show"][data-id="{dead_id}"]')
    wait_for(lambda: browser.find_element(By.ID, "letter").is_displayed())
    assert "79990609999" in browser.find_element(By.ID, "letter-body").text
    browser.find_element(By.CSS_SELECTOR, "#letter button").click()

    click(browser, f'button[data-action="replay"][data-id="{dead_id}"]')
    replayed = re.search(r"as job (\w+)\.", flash(browser, f"Replayed {dead_id}"))
    assert replayed is not None
    wait_for(lambda: jobstore.state_of(client, replayed[1]) == jobstore.State.DONE, timeout=60)
    phone_ok = [r for r in sandbox.received() if r["status"] == 200]
    assert any(r["body"]["phone"] == "79990609999" for r in phone_ok)

    wait_for(lambda: not mismatches(browser, api), timeout=15, interval=0.5)
    screenshot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
