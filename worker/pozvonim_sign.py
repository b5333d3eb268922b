"""Pozvonim request signing, as its PHP example does: md5(token . http_build_query(ksort(p))).

PHP's ``http_build_query`` (default RFC 1738 mode) encodes every byte but ``A-Za-z0-9-_.``
as ``%XX`` (so ``~`` becomes ``%7E``, unlike Python's ``quote_plus``), a space as ``+``, writes
arrays as ``key[0]=…`` / ``key[name]=…`` with the brackets encoded, booleans as 1/0, and
drops nulls. ``ksort`` orders the top-level keys by byte value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus


def php_urlencode(value: str) -> str:
    """PHP ``urlencode``: RFC 1738, space as ``+``, ``~`` encoded."""
    return quote_plus(value, safe="").replace("~", "%7E")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _pairs(prefix: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return [(prefix, _scalar(value))]
    pairs: list[tuple[str, str]] = []
    for key, inner in items:
        pairs += _pairs(f"{prefix}[{key}]", inner)
    return pairs


def http_build_query(params: Mapping[str, Any]) -> str:
    """PHP ``http_build_query($params)`` for string keys."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        pairs += _pairs(str(key), value)
    return "&".join(f"{php_urlencode(k)}={php_urlencode(v)}" for k, v in pairs)


def ksorted(params: Mapping[str, Any]) -> dict[str, Any]:
    """PHP ``ksort`` for string keys: by byte value."""
    return dict(sorted(params.items(), key=lambda item: item[0].encode()))


def sign(token: str, params: Mapping[str, Any]) -> str:
    """The ``sign`` of a request: every parameter but ``sign`` itself."""
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    return hashlib.md5((token + http_build_query(ksorted(unsigned))).encode()).hexdigest()


def token_sign(api_key: str, uid: str) -> str:
    """The ``sign`` of ``GET /auth/token``: ``md5(api_key + "uid=" + uid)``."""
    return hashlib.md5(f"{api_key}uid={uid}".encode()).hexdigest()
