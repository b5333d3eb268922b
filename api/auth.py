"""API keys: ``Authorization: Bearer KEY``, compared in constant time with every known key."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# auto_error=False: a missing header gets our 401 (with WWW-Authenticate), not FastAPI's 403.
bearer = HTTPBearer(auto_error=False, description="a key of CTQ_API_KEYS")

UNAUTHORIZED = HTTPException(
    status.HTTP_401_UNAUTHORIZED,
    detail="missing or unknown API key: send Authorization: Bearer KEY (a key of CTQ_API_KEYS)",
    headers={"WWW-Authenticate": "Bearer"},
)


def key_matches(given: str, known: list[bytes]) -> bool:
    """Whether ``given`` is one of ``known``. Every key is compared, each in constant time, so
    the answer's timing tells neither which key nor how much of one matched."""
    candidate = given.encode()
    matches = [hmac.compare_digest(candidate, key) for key in known]
    return any(matches)


async def require_key(  # async: a check this cheap is not worth a hop to the threadpool
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse a request without one of the app's keys (401)."""
    known: list[bytes] = request.app.state.api_keys
    if credentials is None or not key_matches(credentials.credentials, known):
        raise UNAUTHORIZED


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
