"""The sandbox HTTP server: three Calltouch endpoints, auth, validation, triggers and 429s.

``GET /_sandbox/requests`` lists what it received (the token shown only as valid/invalid),
``DELETE /_sandbox/requests`` forgets it, ``GET /_sandbox/stats`` counts answers by status,
``POST /_sandbox/account {"callback_minutes": false}`` makes every callback answer 10001,
``POST /_sandbox/account {"answer": {"status": 403, "code": 403}, "site_id": "1002"}`` makes
every request of that site (of every site without ``site_id``) get that error,
``POST /_sandbox/latency {"min": 0, "max": 0.05}`` sets the inbound delay. With
``retry_after`` every 429 carries ``Retry-After: N`` (seconds).
"""

from __future__ import annotations

import hmac
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from sandbox import pozvonim, responses
from sandbox.faults import FaultPlan
from sandbox.pozvonim import PozvonimSandbox
from sandbox.rate import SlidingWindow
from sandbox.responses import Answer
from sandbox.triggers import TRIGGERS
from tasks.models import CallbackJob, CommentJob, PoolUpdateJob
from tasks.models.common import ApiModel
from worker.redaction import redact_text

DROP = 0  # answer: close the connection without a response

ROUTES = {
    "/widget-service/v1/api/widget-request/user-form/create": "callback",
    "/lead-service/v1/api/comment/lead/add": "comment",
    "/phone-service/v1/api/calltracking/ad-platform/phone/update": "pool-update",
}


class Sandbox:
    """Shared state of one sandbox: the token it accepts, its rate rule, what it has seen."""

    def __init__(
        self,
        token: str,
        rate: int = 5,
        faults: FaultPlan | None = None,
        pozvonim: PozvonimSandbox | None = None,
        latency: tuple[float, float] = (0.0, 0.0),
        sites: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.token = token
        # Seconds every 429 (Calltouch's and Pozvonim's) names in its Retry-After header.
        self.retry_after = retry_after
        # Accounts of their own: a request for one of these sites must carry its token; any
        # other site is accepted with ``token``.
        self.sites = dict(sites or {})
        # Each request waits a random time in this range before it is counted: the delay
        # between a client sending and the API receiving, which varies on a real network.
        self.latency = latency
        self._rng = random.Random()
        self.window = SlidingWindow(rate)
        self.pozvonim = pozvonim or PozvonimSandbox("1001", "sandbox-key")
        self.pozvonim_window = SlidingWindow(rate)
        self.faults = faults or FaultPlan()
        self.callback_minutes = True  # POST /_sandbox/account {"callback_minutes": false}
        # POST /_sandbox/account {"answer": {"status": 403, "code": 403}}: every request gets
        # that error (a revoked token, an undocumented "points spent"); {"answer": null} ends it.
        # With "site_id", only that site's requests (keyed by site; None: every site).
        self.forced: dict[str | None, tuple[int, int]] = {}
        self.requests: list[dict[str, Any]] = []
        self.statuses: Counter[int] = Counter()
        self.lock = threading.Lock()
        # shut(): a fault test stops the API at a known point. Requests that arrive meanwhile
        # get 503 and are not processed; ``_busy`` counts those between counting and answer.
        self._shut = False
        self._busy = 0
        self._idle = threading.Condition(self.lock)

    @contextmanager
    def serving(self) -> Iterator[bool]:
        """Whether this request is processed (False while shut); the answer is sent inside."""
        with self.lock:
            admitted = not self._shut
            self._busy += admitted
        try:
            yield admitted
        finally:
            with self.lock:
                self._busy -= admitted
                self._idle.notify_all()

    @property
    def processing(self) -> int:
        return self._busy

    def shut(self, timeout: float = 30) -> None:
        """Stop processing requests and return once every request being processed is answered:
        from then on, no request is between the API counting it and the client reading it."""
        with self.lock:
            self._shut = True
            if not self._idle.wait_for(lambda: self._busy == 0, timeout):
                raise TimeoutError(f"{self._busy} requests still being processed")

    def reopen(self) -> None:
        with self.lock:
            self._shut = False

    def delay_inbound(self) -> None:
        low, high = self.latency
        if high > 0:
            time.sleep(self._rng.uniform(low, high))

    def handle(self, path: str, headers: dict[str, str], raw: bytes, client_ip: str) -> Answer:
        self.delay_inbound()
        if not self.window.admit(client_ip):
            return 429, {"meta": [], "data": {"message": "Too Many Requests"}}
        token = headers.get("access-token")
        if not token:
            return 401, {"message": "Unauthorized"}
        site = headers.get("siteid")
        if not site or not hmac.compare_digest(token.encode(), self.token_of(site).encode()):
            return 403, {"message": "Invalid credentials"}
        kind = ROUTES.get(path)
        if kind is None:
            return 404, {"message": f"No route for {path}"}
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return responses.api_error(1, "JSON syntax error or empty request")
        forced = self.forced.get(site) or self.forced.get(None)
        if forced is not None:
            status, code = forced
            return responses.api_error(code, "forced by the sandbox", status)
        fault = self.faults.draw()
        if fault == "drop":
            return DROP, None
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
            return 503, {"message": "Service Unavailable (slow)"}
        if fault is not None:
            return int(fault), {"message": f"injected {fault}"}
        if kind == "callback" and not self.callback_minutes:
            return responses.api_error(10001, "Not enough callback minutes")
        return _answer(kind, body)

    def token_of(self, site: str) -> str:
        return self.sites.get(site, self.token)

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)
            self.statuses[entry["status"]] += 1


def _answer(kind: str, body: dict[str, Any]) -> Answer:
    models: dict[str, type[ApiModel]] = {
        "callback": CallbackJob,
        "comment": CommentJob,
        "pool-update": PoolUpdateJob,
    }
    model = models[kind]
    try:
        model.model_validate(body)
    except ValidationError as exc:
        return responses.validation_error(exc)
    if kind == "comment":
        return responses.comments_added(body["comments"])
    trigger = TRIGGERS.get(body.get("phone") or body.get("phoneNumber") or "")
    if trigger is not None:
        if trigger.code is not None:
            return responses.api_error(trigger.code, trigger.message, trigger.status)
        return trigger.status, {"message": trigger.message}
    if kind == "callback":
        return responses.callback_created()
    return 200, None


class _Handler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith(pozvonim.PREFIX):
            return self._pozvonim("POST", dict(parse_qsl(raw.decode(), keep_blank_values=True)))
        if self.path == "/_sandbox/pozvonim/expire":
            self.server.sandbox.pozvonim.expire_all()
            return self._send(200, {})
        if self.path == "/_sandbox/latency":
            bounds = json.loads(raw)
            self.server.sandbox.latency = (float(bounds["min"]), float(bounds["max"]))
            return self._send(200, bounds)
        if self.path == "/_sandbox/account":
            account, sandbox = json.loads(raw), self.server.sandbox
            if "callback_minutes" in account:
                sandbox.callback_minutes = bool(account["callback_minutes"])
            if "answer" in account:
                forced, site = account["answer"], account.get("site_id")
                if forced:
                    sandbox.forced[site] = (int(forced["status"]), int(forced["code"]))
                else:
                    sandbox.forced.pop(site, None)
            return self._send(200, {"callback_minutes": sandbox.callback_minutes})
        headers = {k.lower(): v for k, v in self.headers.items()}
        sandbox = self.server.sandbox
        with sandbox.serving() as admitted:
            if not admitted:
                sandbox.record(self._entry(headers, raw, 503))
                return self._send(503, {"message": "Service Unavailable (shut)"})
            status, body = sandbox.handle(self.path, headers, raw, self.client_address[0])
            sandbox.record(self._entry(headers, raw, status))
            if status == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(status, body)

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        if self.path.startswith(pozvonim.PREFIX):
            path, _, query = self.path.partition("?")
            self.path = path
            return self._pozvonim("GET", dict(parse_qsl(query, keep_blank_values=True)))
        with sandbox.lock:
            if self.path == "/_sandbox/requests":
                return self._send(200, sandbox.requests)
            if self.path == "/_sandbox/stats":
                return self._send(200, {str(k): v for k, v in sorted(sandbox.statuses.items())})
            if self.path == "/_sandbox/pozvonim/stats":
                return self._send(200, dict(sandbox.pozvonim.counts))
        self._send(404, {"message": "not found"})

    def do_DELETE(self) -> None:
        sandbox = self.server.sandbox
        with sandbox.lock:
            sandbox.requests.clear()
            sandbox.statuses.clear()
        self._send(200, {})

    def _pozvonim(self, method: str, params: dict[str, str]) -> None:
        sandbox = self.server.sandbox
        ip = self.client_address[0]
        sandbox.delay_inbound()
        if not sandbox.pozvonim_window.admit(ip):
            status, body = pozvonim.error(429, "GEN-TOO-MANY-REQUESTS", "Too Many Requests")
        elif method == "GET" and self.path == f"{pozvonim.PREFIX}/auth/token":
            status, body = sandbox.pozvonim.token(params, ip)
        elif method == "POST":
            status, body = sandbox.pozvonim.call(self.path, params, ip)
        else:
            status, body = pozvonim.error(404, "GEN-NOT-FOUND", f"No {method} {self.path}")
        shown = {k: ("***" if k == "sign" else v) for k, v in params.items()}
        sandbox.record(
            {
                "time": time.time(),
                "method": method,
                "path": self.path,
                "client_ip": ip,
                "status": status,
                "body": shown,
            }
        )
        self._send(status, body)

    def _entry(self, headers: dict[str, str], raw: bytes, status: int) -> dict[str, Any]:
        token = headers.get("access-token")
        expected = self.server.sandbox.token_of(headers.get("siteid") or "")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return {
            "time": time.time(),
            "method": "POST",
            "path": self.path,
            "client_ip": self.client_address[0],
            "status": status,
            "site_id": headers.get("siteid"),
            "token": "valid" if token == expected else ("invalid" if token else "missing"),
            "content_type": headers.get("content-type"),
            "body": body,
        }

    def _send(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        if status == 429 and self.server.sandbox.retry_after is not None:
            self.send_header("Retry-After", str(self.server.sandbox.retry_after))
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message("%s", redact_text(format % args))


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, port: int, sandbox: Sandbox, verbose: bool = False, host: str = "127.0.0.1"
    ) -> None:
        self.sandbox = sandbox
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"
