"""The Calltouch client against the sandbox, a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests
from pydantic import SecretStr

from config.policy import Outcome
from sandbox.rate import SlidingWindow
from sandbox.server import Sandbox, SandboxHTTPServer
from tasks import callback, comment, pool_update
from tests.conftest import RunningSandbox
from tests.helpers import SITE_ID, TEST_TOKEN, free_port, wait_for
from worker.calltouch import CalltouchClient
from worker.outcome import classify


def client(url: str, token: str = TEST_TOKEN, read_timeout: float = 5) -> CalltouchClient:
    return CalltouchClient(
        url, SITE_ID, SecretStr(token), connect_timeout=2, read_timeout=read_timeout
    )


def test_client_sends_the_body_with_auth_headers(sandbox: RunningSandbox) -> None:
    body = {"routeKey": "rk", "phone": "79991234567"}
    verdict = classify(client(sandbox.url).post(callback.KIND.path, body))
    assert verdict.outcome is Outcome.DONE
    assert verdict.body["data"]["widgetRequestId"] > 0
    [seen] = sandbox.received()
    assert (seen["path"], seen["site_id"], seen["token"], seen["body"]) == (
        callback.KIND.path,
        SITE_ID,
        "valid",
        body,
    )
    assert seen["content_type"] == "application/json"


def test_wrong_or_missing_token_is_an_account_level_outcome(sandbox: RunningSandbox) -> None:
    answer = client(sandbox.url, token="wrong").post(callback.KIND.path, {})
    assert classify(answer).key == "http_403"
    assert sandbox.received()[0]["token"] == "invalid"


@pytest.mark.parametrize(
    ("phone", "key"),
    [
        ("79990010001", "api_10001"),
        ("79990010003", "api_10003"),
        ("79990010007", "api_10007"),
        ("79990000001", "api_1"),
        ("79990000503", "http_5xx"),
        ("79990000401", "http_401"),
    ],
)
def test_reserved_phones_trigger_documented_errors(
    sandbox: RunningSandbox, phone: str, key: str
) -> None:
    answer = client(sandbox.url).post(callback.KIND.path, {"routeKey": "rk", "phone": phone})
    assert classify(answer).key == key


def test_invalid_bodies_get_the_documented_validation_error(sandbox: RunningSandbox) -> None:
    lead = {"matching": [{"type": "call", "callParams": {"callId": 1}}], "addComment": ""}
    answer = client(sandbox.url).post(comment.KIND.path, {"comments": [lead]})
    assert answer.status_code == 400  # type: ignore[union-attr]
    data = answer.json()["data"]  # type: ignore[union-attr]
    assert data["type"] == "validationError"
    assert data["validationErrorData"]["violations"][0]["fieldPath"] == "comments[0].addComment"
    assert classify(answer).outcome is Outcome.DEAD


def test_comment_answers_come_per_lead_in_order(sandbox: RunningSandbox) -> None:
    leads = [
        {"matching": [{"type": "call", "callParams": {"callId": 7}}], "addComment": "a"},
        {"matching": [{"type": "call", "callParams": {"callId": 8}}], "addComment": "[no-lead]"},
    ]
    answer = client(sandbox.url).post(comment.KIND.path, {"comments": leads})
    assert comment.lead_results(classify(answer).body) == [
        {"commented": True, "error": None, "callId": 7, "requestId": None},
        {"commented": False, "error": "Lead not found", "callId": None, "requestId": None},
    ]


def test_pool_update_success_has_an_empty_body(sandbox: RunningSandbox) -> None:
    answer = client(sandbox.url).post(
        pool_update.KIND.path, {"phoneNumber": "74950000001", "poolName": "p"}
    )
    assert (answer.status_code, answer.content) == (200, b"")  # type: ignore[union-attr]


def test_sliding_window_admits_at_most_n_in_any_second() -> None:
    window = SlidingWindow(5)
    admitted = [
        t for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.99, 1.05, 1.11, 1.12) if window.admit("ip", t)
    ]
    assert admitted == [0.0, 0.1, 0.2, 0.3, 0.4, 1.05, 1.11]
    assert window.admit("other-ip", 0.5)


def test_sandbox_answers_429_beyond_its_rate() -> None:
    server = SandboxHTTPServer(0, Sandbox(TEST_TOKEN, rate=2))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        statuses = [
            client(server.url)
            .post(callback.KIND.path, {"routeKey": "r", "phone": "79991234567"})
            .status_code
            for _ in range(3)
        ]  # type: ignore[union-attr]
        assert statuses[:2] == [200, 200] and 429 in statuses
        assert classify(client(server.url).post("/x", {})).key in {"http_429", "http_4xx"}
    finally:
        server.shutdown()
        server.server_close()


def test_a_shut_sandbox_answers_what_it_processes_and_then_processes_nothing(
    sandbox: RunningSandbox,
) -> None:
    api, body = sandbox.server.sandbox, {"routeKey": "rk", "phone": "79991234567"}

    def send() -> str:
        return classify(client(sandbox.url).post(callback.KIND.path, body)).key

    api.latency = (0.3, 0.3)
    answers: list[str] = []
    slow = threading.Thread(target=lambda: answers.append(send()))
    slow.start()
    wait_for(lambda: api.processing == 1, interval=0.01)
    api.shut()
    # shut() returned once the request being processed was answered
    assert [r["status"] for r in sandbox.received()] == [200]
    assert send() == "http_5xx"
    api.reopen()
    assert send() == "http_2xx"
    slow.join()
    assert answers == ["http_2xx"]
    assert [r["status"] for r in sandbox.received()] == [200, 503, 200]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_read_timeout_is_a_retryable_outcome(silent_server: str) -> None:
    answer = client(silent_server, read_timeout=0.2).post(callback.KIND.path, {})
    assert isinstance(answer, requests.ReadTimeout)
    assert classify(answer).key == "timeout"


def test_refused_connection_is_a_retryable_outcome() -> None:
    answer = client(f"http://127.0.0.1:{free_port()}").post(callback.KIND.path, {})
    assert classify(answer).key == "connection"
    assert TEST_TOKEN not in classify(answer).message
