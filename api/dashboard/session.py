"""Who may see the dashboard: a browser signs in once with an API key and then carries a
session cookie; a script may send ``Authorization: Bearer KEY`` as to the rest of the API.

The cookie holds ``ISSUED.MAC``, MAC = HMAC-SHA256(key, ISSUED): it proves the key without
holding it (it cannot be sent as a Bearer key), every API process behind one balancer
accepts it (no server-side store), it ends after ``LIFETIME`` seconds, and removing the key
from CTQ_API_KEYS ends it at once. It is HttpOnly (no script reads it) and SameSite=Strict
(no other site's page makes the browser send it): with state changes only by POST with a
JSON body from this origin (``check_same_origin``), that is the defence against CSRF.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from api.auth import key_matches

COOKIE = "ctq_session"
LIFETIME = 12 * 3600


class NotSignedIn(Exception):
    """The request carries neither a valid session cookie nor a valid Bearer key."""


class CrossSite(Exception):
    """A state-changing request that did not come from the dashboard's own page."""


def issue(key: str, now: float) -> str:
    """A session cookie's value for a browser that signed in with ``key``."""
    issued = str(int(now))
    return f"{issued}.{_mac(key.encode(), issued)}"


def valid(cookie: str | None, known: list[bytes], now: float) -> bool:
    """Whether ``cookie`` was issued for one of ``known`` less than ``LIFETIME`` ago. Every key
    is compared, each in constant time."""
    issued, _, mac = (cookie or "").partition(".")
    if not issued.isdigit() or not 0 <= now - int(issued) <= LIFETIME:
        return False
    matches = [hmac.compare_digest(mac, _mac(key, issued)) for key in known]
    return any(matches)


def _mac(key: bytes, issued: str) -> str:
    return hmac.new(key, f"ctq dashboard session {issued}".encode(), hashlib.sha256).hexdigest()


def signed_in(request: Request, now: float) -> bool:
    """A valid Bearer key or session cookie (always, when the API is served without keys)."""
    if not request.app.state.require_auth:
        return True
    known: list[bytes] = request.app.state.api_keys
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given and key_matches(given, known):
        return True
    return valid(request.cookies.get(COOKIE), known, now)


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request that is not JSON from this origin (CSRF: a form on
    another site can neither send JSON nor, with SameSite=Strict, our cookie)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise CrossSite("send application/json")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return  # not a browser (curl with a Bearer key): nothing to forge
    parts = urlsplit(origin)
    if (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc):
        raise CrossSite(f"request from another origin: {parts.scheme}://{parts.netloc}")


def set_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=LIFETIME,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
