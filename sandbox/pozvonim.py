"""The sandbox's Pozvonim: ``GET /v2u/auth/token`` and the signed call methods.

Tokens are bound to the IP that asked for them and expire after 4 hours (or at once, after
``POST /_sandbox/pozvonim/expire``). Every call must carry ``uid`` and a valid ``sign``.
"""

from __future__ import annotations

import hmac
import itertools
import re
import secrets
import threading
import time
from collections import Counter
from typing import Any

from worker.pozvonim_sign import sign, token_sign

PREFIX = "/v2u"
CALL = re.compile(rf"{PREFIX}/sites/(\d+)/call(/delayed)?")
Answer = tuple[int, Any]


def error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "http_code": status, "message": message}}


class PozvonimSandbox:
    """One account: ``uid`` with ``api_key``."""

    def __init__(self, uid: str, api_key: str) -> None:
        self.uid = uid
        self.api_key = api_key
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client ip, expires at)
        self.counts: Counter[str] = Counter()
        self._ids = itertools.count(5_000_001)
        self._lock = threading.Lock()

    def token(self, query: dict[str, str], client_ip: str) -> Answer:
        self.counts["token_requests"] += 1
        expected = token_sign(self.api_key, self.uid)
        if query.get("uid") != self.uid or not hmac.compare_digest(query.get("sign", ""), expected):
            return error(403, "AUTH-WRONG-SIGN", "Wrong uid or sign")
        token = secrets.token_hex(16)
        expires = time.time() + 4 * 3600
        with self._lock:
            self.tokens[token] = (client_ip, expires)
        return 200, {"token": token, "expire": int(expires)}

    def call(self, path: str, params: dict[str, str], client_ip: str) -> Answer:
        match = CALL.fullmatch(path)
        if match is None:
            return error(404, "GEN-NOT-FOUND", f"No method {path}")
        problem = self._authenticate(params, client_ip)
        if problem:
            return problem
        if not params.get("phone"):
            return error(400, "GEN-VALIDATION", "phone is required")
        if match.group(2) and not params.get("delayed"):
            return error(400, "GEN-VALIDATION", "delayed is required")
        self.counts["calls"] += 1
        return 200, {"id": next(self._ids), "site_id": int(match.group(1))}

    def expire_all(self) -> None:
        with self._lock:
            self.tokens = {t: (ip, 0.0) for t, (ip, _) in self.tokens.items()}

    def _authenticate(self, params: dict[str, str], client_ip: str) -> Answer | None:
        if params.get("uid") != self.uid:
            return error(403, "AUTH-WRONG-UID", "Unknown uid")
        with self._lock:
            valid = [
                t
                for t, (ip, until) in self.tokens.items()
                if ip == client_ip and until > time.time()
            ]
        signed = params.get("sign", "")
        if any(hmac.compare_digest(signed, sign(t, params)) for t in valid):
            return None
        return error(401, "AUTH-INVALID-TOKEN", "Token expired, or sign does not match")
