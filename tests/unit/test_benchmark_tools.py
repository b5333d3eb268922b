"""The benchmarks' own measuring tools: the fixed-rate load generator and c)'s floor."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import http_load
from benchmarks.callback_floor import floor

STALL = 0.3


class Stalling(BaseHTTPRequestHandler):
    """Answers 202; the server's ``stall_at``-th request stalls ``STALL`` s; every 3rd
    request on a connection is answered with ``Connection: close``."""

    protocol_version = "HTTP/1.1"
    stall_at = 1
    received = itertools.count(1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if next(self.received) == self.stall_at:
            threading.Event().wait(STALL)
        self.served = getattr(self, "served", 0) + 1
        self.send_response(202)
        self.send_header("Content-Length", "2")
        if self.served % 3 == 0:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def stalling_server() -> Iterator[int]:
    Stalling.stall_at, Stalling.received = 1, itertools.count(1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def request(n: int, i: int) -> bytes:
    return http_load.post("/", {"Content-Type": "application/json"}, b"{}")


def test_at_a_fixed_rate_a_stall_counts_in_every_request_that_was_due_during_it(
    stalling_server: int,
) -> None:
    # One client, a request due every 50 ms: the first answer takes 300 ms, so the requests
    # due at 50..250 ms go late, and each counts from when it was due, not when it went.
    load = http_load.run("127.0.0.1", stalling_server, 1, 1.0, request, expect=202, rate=20)

    assert len(load.latencies) == 20
    assert sum(latency >= 0.1 for latency in load.latencies) >= 4
    assert load.unexpected == []


def test_at_a_fixed_rate_requests_due_before_the_end_are_counted_however_late(
    stalling_server: int,
) -> None:
    # The request due at 0.8 s stalls 300 ms: those due at 0.85-0.95 s are still waiting at
    # the 1 s deadline, and they are the slowest answers of the run.
    Stalling.stall_at = 17
    load = http_load.run("127.0.0.1", stalling_server, 1, 1.0, request, expect=202, rate=20)

    assert len(load.latencies) == 20
    assert max(load.latencies) >= STALL


def test_an_answer_with_connection_close_makes_the_client_connect_again(
    stalling_server: int,
) -> None:
    load = http_load.run("127.0.0.1", stalling_server, 2, 1.0, request, expect=202, rate=40)

    # Two clients, 20 requests each; each connection is closed after its 3rd answer.
    assert len(load.latencies) == 40
    assert load.reconnects == 2 * (20 // 3)
    assert load.unexpected == []


def test_the_floor_is_the_wait_the_limit_alone_forces() -> None:
    assert floor([0.0] * 5) == 0.0
    assert floor([0.0] * 6) == 1.0  # the 6th waits for the first to leave the window
    assert floor([0.1 * n for n in range(6)]) == pytest.approx(0.5)
    assert floor([0.3 * n for n in range(50)]) == 0.0  # 3.3 a second: never 5 in a window
    assert floor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], limit=5, window=2.0) == 2.0
