"""Keeping secrets out of everything ctq writes: dead letters, job records, logs.

Tokens live in settings (and the Pozvonim token each egress IP mints, in Redis), but text can
carry one by accident: a payload field named like a secret, a URL whose query holds one
(Pozvonim's token request is a GET with ``sign``, a static hash that lets anyone mint tokens),
a password in a Redis URL, or an exception that quotes a header value (``requests`` refuses a
token with a stray control character by printing it). HTTP libraries print URLs in their
DEBUG logs and in the text of their exceptions. So text is cleaned twice: by the shape of a
secret (``sign=...``, ``user:password@``) and by the value of every secret this process knows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

SECRET_NAMES = frozenset(
    {"token", "access-token", "access_token", "api_key", "apikey", "key", "sign", "password"}
)
_IN_TEXT = re.compile(
    r"(?i)\b(sign|token|access[-_]token|api[-_]?key|password)(=|%3D)[^&\s'\"<>)]+"
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]+@")
# Shorter values are not looked for in text: "1" or "abc" would blank out ordinary words.
SHORTEST_KNOWN_SECRET = 6
# Longest first, so none is left half blanked; replaced whole (never changed in place), as
# any thread may be reading it for a log record meanwhile.
_known: tuple[str, ...] = ()


def remember_secrets(values: Iterable[str | None]) -> None:
    """From now on, ``redact_text`` blanks out these values (and their escaped forms, as an
    exception's ``repr`` of them prints) wherever they appear."""
    global _known
    found = set(_known)
    for value in values:
        if value and len(value.strip()) >= SHORTEST_KNOWN_SECRET:
            found.update({value, value.strip(), repr(value)[1:-1]})
    _known = tuple(sorted(found, key=len, reverse=True))


def redact(value: Any) -> Any:
    """A copy of ``value`` with any secret-looking field replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in SECRET_NAMES else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_text(text: str) -> str:
    """``...?uid=1&sign=abc`` → ``...?uid=1&sign=***``, ``redis://:pw@h`` → ``redis://:***@h``,
    and any known secret's value → ``***``."""
    text = masked_url(_IN_TEXT.sub(r"\1\2***", text))
    for secret in _known:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def masked_url(url: str) -> str:
    """A URL to show people: its password (if any) as ``***``."""
    return _URL_PASSWORD.sub(r"\1:***@", url)


def redact_log_records() -> None:
    """From now on, every log record of this process (and of processes forked from it) has
    secrets replaced before any handler sees it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "ctq_redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        text = record.getMessage()
        cleaned = redact_text(text)
        if cleaned != text:
            record.msg, record.args = cleaned, None
        return record

    redacting.ctq_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
