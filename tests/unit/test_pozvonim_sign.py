"""Signature vectors worked out by hand from PHP's rules (ksort + http_build_query + md5)."""

from __future__ import annotations

import hashlib

import pytest

from worker.pozvonim_sign import http_build_query, ksorted, sign, token_sign


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# (parameters, what PHP's ksort + http_build_query gives, worked out by hand)
VECTORS = [
    ({"uid": 1, "site_id": 1, "widget_id": 52}, "site_id=1&uid=1&widget_id=52"),
    ({"phone": "+7 (999) 123-45-67", "uid": 7}, "phone=%2B7+%28999%29+123-45-67&uid=7"),
    (
        {"useragent": "Mozilla/5.0 (X11; Linux) ~x", "uid": 7},
        "uid=7&useragent=Mozilla%2F5.0+%28X11%3B+Linux%29+%7Ex",
    ),
    ({"b": True, "c": False, "n": None, "a": "x"}, "a=x&b=1&c=0"),
    ({"ids": [3, 5], "uid": 1}, "ids%5B0%5D=3&ids%5B1%5D=5&uid=1"),
    (
        {"site": {"url": "http://a.ru/?q=1&r=2"}},
        "site%5Burl%5D=http%3A%2F%2Fa.ru%2F%3Fq%3D1%26r%3D2",
    ),
    ({"region": "Москва"}, "region=%D0%9C%D0%BE%D1%81%D0%BA%D0%B2%D0%B0"),
    ({"b": 1, "B": 2, "a": 3, "_": 4}, "B=2&_=4&a=3&b=1"),
    (
        {"delayed": "2026-11-23T10:00:00+03:00", "uid": 1},
        "delayed=2026-11-23T10%3A00%3A00%2B03%3A00&uid=1",
    ),
    ({"safe": "A-z_0.9"}, "safe=A-z_0.9"),
]


@pytest.mark.parametrize(("params", "query"), VECTORS)
def test_query_is_built_as_php_builds_it(params: dict, query: str) -> None:
    assert http_build_query(ksorted(params)) == query


@pytest.mark.parametrize(("params", "query"), VECTORS)
def test_sign_is_md5_of_token_and_the_sorted_query(params: dict, query: str) -> None:
    assert sign("TOKEN123", params) == md5("TOKEN123" + query)


def test_sign_leaves_out_the_sign_parameter() -> None:
    assert sign("t", {"uid": 1, "sign": "old"}) == md5("tuid=1")


def test_token_request_sign() -> None:
    assert token_sign("secret-key", "42") == md5("secret-keyuid=42")
