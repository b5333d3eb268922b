"""What a kept-alive connection saves per request: the same POSTs to the sandbox, through
one pooled session, and with a new connection for each (``Connection: close``)."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import requests

from sandbox.server import Sandbox, SandboxHTTPServer
from tasks.registry import KINDS
from tests.helpers import TEST_TOKEN
from worker.calltouch import pooled_session

HEADERS = {"Access-Token": TEST_TOKEN, "SiteId": "1"}


def keepalive_vs_new(requests_: int = 300) -> dict[str, Any]:
    server = SandboxHTTPServer(0, Sandbox(TEST_TOKEN, rate=1_000_000))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = server.url + KINDS["pool-update"].path
    body = {"phoneNumber": "74950000001", "poolName": "bench"}
    try:
        session = pooled_session()
        kept = _timed(lambda: session.post(url, json=body, headers=HEADERS), requests_)
        closing = {**HEADERS, "Connection": "close"}
        new = _timed(lambda: requests.post(url, json=body, headers=closing), requests_)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "requests": requests_,
        "keepalive_ms": kept,
        "new_connection_ms": new,
        "saved_ms_per_request": round(new["mean"] - kept["mean"], 3),
    }


def _timed(send: Any, count: int) -> dict[str, float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        send().raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {
        "mean": round(statistics.fmean(took), 3),
        "p50": round(took[len(took) // 2], 3),
        "p99": round(took[int(len(took) * 0.99)], 3),
    }


if __name__ == "__main__":
    print(keepalive_vs_new())
