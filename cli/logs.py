"""Where every ctq process logs, and in which shape: text for people, JSON lines for shippers.

One handler on the root logger, on stderr, for ctq's own loggers and Celery's, uvicorn's and
the libraries' alike (Celery keeps it: ``worker_hijack_root_logger=False``). Periodic ticks
are DEBUG: at INFO a running stack tells what happened to jobs, not that the clock ticked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from celery.app.trace import LOG_RECEIVED, LOG_REJECTED, LOG_SUCCESS
from kombu.transport.virtual.base import W_NO_CONSUMERS

from config import Settings
from scheduler.beat import TICK_TASKS
from tasks.registry import KINDS
from worker import keys
from worker.redaction import redact_log_records, redact_text

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What ctq's own records carry besides their message (worker.records.log_outcome): kept as
# keys of their own in JSON, for a shipper to filter on.
FIELDS = ("job_id", "kind", "outcome", "reason", "http_status", "code")

JOB_TASKS = frozenset(kind.task_name for kind in KINDS.values())
# celery.beat logs each entry it sends with this format (a literal there, not a constant).
BEAT_SENDING = "Scheduler: Sending due task %s (%s)"
# Polled by health checks, Prometheus, load balancers and an open dashboard (its live parts,
# every 2 and 10 s): one access line each is a tick.
POLLED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/dashboard/live", "/dashboard/campaigns"}
)


def configure(settings: Settings) -> None:
    """Send every log record of this process (and of the processes it forks) to stderr, in
    ``CTQ_LOG_FORMAT`` at ``CTQ_LOG_LEVEL``, ticks demoted to DEBUG, secrets redacted."""
    level = logging.getLevelName(settings.log_level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(TicksAtDebug())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings (Celery's SecurityWarning) as records
    redact_log_records()


def is_tick(record: logging.LogRecord) -> bool:
    """A line that says only that something periodic ran: beat sending a maintenance task,
    Celery's received/succeeded lines (a job's outcome has its own line), a health check."""
    args: Any = record.args
    if record.name == "celery.beat":
        return record.msg == BEAT_SENDING and args[1] in TICK_TASKS
    if record.name in ("celery.worker.strategy", "celery.app.trace"):
        if not isinstance(args, dict) or args.get("name") not in JOB_TASKS | TICK_TASKS:
            return False
        # A job task gives way (rejects its message) as a matter of course; its line says so.
        rejected = record.msg == LOG_REJECTED.strip() and args["name"] in JOB_TASKS
        return record.msg in (LOG_RECEIVED, LOG_SUCCESS) or rejected
    if record.name == "kombu.transport.virtual.base" and record.msg == W_NO_CONSUMERS:
        # A maintenance tick that reached a worker as it stopped consuming: kombu puts it back.
        return bool(args == (keys.MAINTENANCE,))
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        _, method, path, _, status = args
        return method == "GET" and path in POLLED_PATHS and int(status) < 400
    return False


class TicksAtDebug(logging.Filter):
    """Ticks become DEBUG records: dropped unless the root logger shows DEBUG (asked for by
    CTQ_LOG_LEVEL, or by ``ctq worker -l DEBUG``, which Celery applies to the root logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not is_tick(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``; a traceback's text is redacted too (an exception may quote a URL)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, ei: Any) -> str:
        return redact_text(super().formatException(ei))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, pid, message, ctq's fields, and
    the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def announce(settings: Settings, text: str) -> None:
    """Lines a long-running command says to whoever started it (``ctq up``'s banner, the
    sandbox's address): printed as they are, or in JSON mode one INFO record each."""
    if settings.log_format == "text":
        print(text, flush=True)
        return
    for line in text.splitlines():
        logging.getLogger("ctq").info(line.strip())


def celery_says_json() -> None:
    """Celery's worker prints a few lines itself, outside logging ("worker: Warm shutdown"),
    with ``safe_say``, which a signal handler may call: in JSON mode they are JSON lines too,
    written as Celery writes them (one ``os.write``, no lock a signal could find held)."""
    import celery.apps.worker

    def say(msg: str, f: Any = sys.__stderr__) -> None:
        record = logging.LogRecord("celery.apps.worker", logging.INFO, "", 0, msg, None, None)
        with contextlib.suppress(OSError, ValueError):
            os.write(f.fileno(), (JsonFormatter().format(record) + "\n").encode())

    celery.apps.worker.safe_say = say  # type: ignore[attr-defined]
