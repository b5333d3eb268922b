"""Keeping secrets out of everything ctq writes: dead letters, job records, logs.

Tokens live only in settings, but two things can carry one by accident: a payload field
named like a secret, and a URL whose query holds one (Pozvonim's token request is a GET with
``sign``, a static hash that lets anyone mint tokens). HTTP libraries print such URLs in
their DEBUG logs and in the text of their exceptions.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_NAMES = frozenset(
    {"token", "access-token", "access_token", "api_key", "apikey", "key", "sign", "password"}
)
_IN_TEXT = re.compile(
    r"(?i)\b(sign|token|access[-_]token|api[-_]?key|password)(=|%3D)[^&\s'\"<>)]+"
)


def redact(value: Any) -> Any:
    """A copy of ``value`` with any secret-looking field replaced by ``***``."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in SECRET_NAMES else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_text(text: str) -> str:
    """``...?uid=1&sign=abc`` → ``...?uid=1&sign=***`` for every secret-looking parameter."""
    return _IN_TEXT.sub(r"\1\2***", text)


def redact_log_records() -> None:
    """From now on, every log record of this process (and of processes forked from it) has
    secret-looking URL parameters replaced before any handler sees it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "ctq_redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        text = record.getMessage()
        if _IN_TEXT.search(text):
            record.msg, record.args = redact_text(text), None
        return record

    redacting.ctq_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
