"""The Pozvonim client: signed form requests with a token shared by every worker.

The token is valid 4 hours and bound to the IP that asked for it, so it is cached in Redis per
(uid, egress IP): one worker fetches it (the others wait for it), all use it, and it is
fetched again 10 minutes before it expires, or once after an authentication error.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
import requests
from pydantic import SecretStr
from redis.exceptions import LockError

from config import Settings
from worker import keys, metrics
from worker.calltouch import pooled_session
from worker.outcome import TokenMissing, Verdict
from worker.pozvonim_sign import http_build_query, ksorted, sign, token_sign
from worker.transactions import transact

TOKEN_LIFETIME = 4 * 3600
RENEW_BEFORE = 600
# The token-fetch lock lives this much longer than the token request can take.
FETCH_SLACK_SECONDS = 5.0


class PozvonimClient:
    """POSTs signed parameters; answers and transport errors are returned for ``classify``."""

    def __init__(
        self,
        base_url: str,
        uid: str,
        api_key: SecretStr,
        client: redis.Redis,
        egress_ip: str,
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.uid = uid
        self._api_key = api_key
        self.redis = client
        self.token_key = keys.pozvonim_token(uid, egress_ip)
        self.timeout = (connect_timeout, read_timeout)
        self._fetch_seconds = connect_timeout + read_timeout + FETCH_SLACK_SECONDS
        self.session = pooled_session()
        self._used: str | None = None
        self._fresh = False

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis) -> PozvonimClient | None:
        if not settings.pozvonim_uid or settings.pozvonim_api_key is None:
            return None
        return cls(
            settings.pozvonim_api_url,
            settings.pozvonim_uid,
            settings.pozvonim_api_key,
            client,
            settings.egress_ip,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )

    def post(
        self, path: str, params: dict[str, Any]
    ) -> requests.Response | requests.RequestException:
        token = self._token()
        if not isinstance(token, str):
            return token  # the token request itself failed: that answer is the verdict
        body = {**params, "uid": self.uid}
        body["sign"] = sign(token, body)
        try:
            return self.session.post(
                self.base_url + path,
                data=http_build_query(ksorted(body)),
                timeout=self.timeout,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except requests.RequestException as error:
            return error

    def after(self, verdict: Verdict) -> bool:
        """True when the answer was an authentication error with a cached token: the token is
        forgotten and the request should be sent again (once) with a new one."""
        if verdict.key not in ("http_401", "http_403") or self._fresh or self._used is None:
            return False

        def forget(pipe: redis.client.Pipeline) -> None:
            if pipe.get(self.token_key) == self._used:  # not if another worker renewed it
                pipe.multi()
                pipe.delete(self.token_key)

        transact(self.redis, forget, self.token_key)
        return True

    def _token(self) -> str | requests.Response | requests.RequestException:
        # One worker fetches while the others wait; the lock outlives the request it guards
        # and only its holder releases it.
        fetching = self.redis.lock(
            f"{self.token_key}:fetching", timeout=self._fetch_seconds, thread_local=False
        )
        deadline = time.monotonic() + self._fetch_seconds
        while True:
            cached = self.redis.get(self.token_key)
            if cached:
                self._used, self._fresh = str(cached), False
                return self._used
            if fetching.acquire(blocking=False):
                try:
                    return self._fetch()
                finally:
                    with contextlib.suppress(LockError):  # it lapsed: not ours to release
                        fetching.release()
            if time.monotonic() > deadline:
                return requests.Timeout("waited too long for another worker's token request")
            time.sleep(0.05)

    def _fetch(self) -> str | requests.Response | requests.RequestException:
        query = {"uid": self.uid, "sign": token_sign(self._api_key.get_secret_value(), self.uid)}
        try:
            answer = self.session.get(
                f"{self.base_url}/auth/token", params=query, timeout=self.timeout
            )
        except requests.RequestException as error:
            return error
        if answer.status_code not in (200, 201):
            return answer  # the job's verdict: counted as the job's request
        token = _token_of(answer)
        if token is None:
            # Not an answer to the job (nothing was sent for it), so never "done".
            return TokenMissing(
                f"the token request was answered HTTP {answer.status_code} without a token"
            )
        metrics.count_request(self.redis, "pozvonim", "token", "done")
        ttl = TOKEN_LIFETIME - RENEW_BEFORE
        self.redis.set(self.token_key, token, ex=ttl)
        self._used, self._fresh = token, True
        return token

    def close(self) -> None:
        self.session.close()


def _token_of(answer: requests.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    data = body.get("data", body) if isinstance(body, dict) else {}
    token = data.get("token") if isinstance(data, dict) else None
    return str(token) if token else None
