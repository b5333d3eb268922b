"""The errors a user sees: each says in one line what went wrong, and carries the exit status
the CLI documents. The CLI translates them once, at its edge (``cli.main``)."""

from __future__ import annotations

OK = 0
FAILED = 1
INVALID_INPUT = 2
REDIS_UNAVAILABLE = 3


class CtqError(Exception):
    """A failure to report in one line; exit status 1 unless a subclass says otherwise."""

    exit_status = FAILED


class InvalidInput(CtqError):
    """The input (a file, an argument, a setting given on the command line) was refused;
    nothing from it was enqueued, staged or loaded."""

    exit_status = INVALID_INPUT


class NotFound(CtqError):
    """The job, dead letter or campaign named does not exist (or has expired)."""


class RedisUnavailable(CtqError):
    """Redis is unreachable, full or read-only; nothing was enqueued."""

    exit_status = REDIS_UNAVAILABLE
