"""The HTTP client for the Calltouch API: one pooled session per worker process."""

from __future__ import annotations

from typing import Any

import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter

from config import Settings
from config.accounts import Account
from worker.errors import CtqError


def pooled_session(pool_size: int = 4) -> requests.Session:
    """A session that keeps connections open and never retries by itself: every answer goes
    back to the outcome policy."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class MissingCredentials(CtqError):
    """CALLTOUCH_SITE_ID or CALLTOUCH_TOKEN is not set."""


class CalltouchClient:
    """Sends JSON bodies with the ``Access-Token`` and ``SiteId`` headers.

    No automatic retries at this level: every answer goes back to the outcome policy.
    """

    def __init__(
        self,
        base_url: str,
        site_id: str,
        token: SecretStr,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = pooled_session(pool_size)
        self.session.headers.update(
            {
                "Access-Token": token.get_secret_value(),
                "SiteId": site_id,
                "Content-Type": "application/json",
                "User-Agent": "ctq/0.1",
            }
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CalltouchClient:
        """The client of the default account (CALLTOUCH_SITE_ID, CALLTOUCH_TOKEN)."""
        return cls.for_account(settings, settings.account(None))

    @classmethod
    def for_account(cls, settings: Settings, account: Account) -> CalltouchClient:
        if not account.site_id or account.token is None:
            raise MissingCredentials(
                "set CALLTOUCH_SITE_ID and CALLTOUCH_TOKEN (or run `ctq up` with no token "
                "to use the sandbox)"
            )
        return cls(
            settings.calltouch_api_url,
            account.site_id,
            account.token,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            # Enough kept-alive connections for every job this process runs at once (one per
            # process in the prefork pool; more under a thread pool), so requests skip the
            # TCP and TLS handshakes that add to, and vary, their delay.
            pool_size=settings.worker_concurrency,
        )

    def post(
        self, path: str, body: dict[str, Any]
    ) -> requests.Response | requests.RequestException:
        """POST ``body``; a transport error is returned, not raised, for ``classify``."""
        try:
            return self.session.post(self.base_url + path, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            return error

    def after(self, verdict: Any) -> bool:
        """Nothing to fix on our side after any answer: never send again at once."""
        return False

    def close(self) -> None:
        self.session.close()
