"""Log lines: ticks at DEBUG, text or JSON lines, never a secret."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery.app.trace import LOG_FAILURE, LOG_RECEIVED, LOG_REJECTED, LOG_SUCCESS
from kombu.transport.virtual.base import W_NO_CONSUMERS
from pydantic import ValidationError

from cli import logs
from config import Settings


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    logging.captureWarnings(False)


def record(name: str, msg: str, args: Any, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def celery_task(msg: str, task: str, level: int = logging.INFO) -> logging.LogRecord:
    context = {"id": "abc", "name": task, "runtime": 0.01, "return_value": "1", "exc": "E"}
    return record("celery.app.trace", msg, (context,), level)


def access(method: str, path: str, status: int) -> logging.LogRecord:
    """A line as uvicorn's access logger makes it."""
    args = ("127.0.0.1:5000", method, path, "1.1", status)
    return record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', args)


TICKS = [
    record("celery.beat", logs.BEAT_SENDING, ("move-due-jobs", "ctq.move_due_jobs")),
    record("celery.beat", logs.BEAT_SENDING, ("release-campaigns", "ctq.release_campaigns")),
    celery_task(LOG_SUCCESS, "ctq.move_due_jobs"),
    celery_task(LOG_SUCCESS, "ctq.callback"),  # the job's outcome line says it
    celery_task(LOG_REJECTED.strip(), "ctq.comment", logging.WARNING),  # gave way
    record("celery.worker.strategy", LOG_RECEIVED, ({"id": "abc", "name": "ctq.comment"},)),
    access("GET", "/healthz", 200),
    access("GET", "/metrics", 200),
    access("GET", "/dashboard/live", 200),  # an open dashboard, every 2 s
    # A tick that reached a worker as it stopped: kombu puts it back on its queue.
    record("kombu.transport.virtual.base", W_NO_CONSUMERS, ("maintenance",), logging.WARNING),
]
NOT_TICKS = [
    record("celery.beat", logs.BEAT_SENDING, ("nightly-lead-tagging", "ctq.nightly")),
    celery_task(LOG_SUCCESS, "ctq.nightly"),
    celery_task(LOG_FAILURE, "ctq.callback", logging.ERROR),
    celery_task(LOG_FAILURE, "ctq.move_due_jobs", logging.ERROR),
    record("celery.beat", "beat: Starting...", ()),
    access("GET", "/readyz", 503),
    access("POST", "/v1/jobs/callback", 202),
    access("POST", "/dashboard/resume", 200),
    record("worker.records", "job %s callback done", ("abc",)),
    record("kombu.transport.virtual.base", W_NO_CONSUMERS, ("realtime",), logging.WARNING),
]


@pytest.mark.parametrize("line", TICKS, ids=lambda r: r.name)
def test_ticks_are_dropped_at_info_and_shown_as_debug_at_debug(line: logging.LogRecord) -> None:
    logging.getLogger().setLevel(logging.INFO)
    assert logs.TicksAtDebug().filter(line) is False
    logging.getLogger().setLevel(logging.DEBUG)
    assert logs.TicksAtDebug().filter(line) is True
    assert (line.levelno, line.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize("line", NOT_TICKS, ids=lambda r: r.name)
def test_outcomes_errors_and_the_nightly_run_keep_their_level(line: logging.LogRecord) -> None:
    level = line.levelno
    logging.getLogger().setLevel(logging.INFO)
    assert logs.TicksAtDebug().filter(line) is True
    assert line.levelno == level


def configured(capsys: pytest.CaptureFixture[str], **env: str) -> None:
    logs.configure(Settings(_env_file=None, **env))  # type: ignore[arg-type]
    capsys.readouterr()


def test_json_lines_carry_a_jobs_fields_and_a_redacted_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configured(capsys, CTQ_LOG_FORMAT="json")
    outcome = {"job_id": "j1", "kind": "callback", "outcome": "dead", "reason": "no widget"}
    logging.getLogger("worker.records").info("job j1 callback dead: api_10003", extra=outcome)
    try:
        raise ValueError("GET https://api.example/auth/token?uid=1&sign=f00dfeed failed")
    except ValueError:
        logging.getLogger("worker.runner").exception("request to %s", "/x?token=s3cr3t")
    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)  # one object a line, two lines
    assert first["level"] == "INFO" and first["logger"] == "worker.records"
    assert {k: first[k] for k in outcome} == outcome
    assert first["message"] == "job j1 callback dead: api_10003"
    assert datetime.fromisoformat(first["time"]).utcoffset() == timedelta(0)
    assert second["message"] == "request to /x?token=***"
    assert "sign=***" in second["exception"] and "ValueError" in second["exception"]
    assert "f00dfeed" not in lines[1] and "s3cr3t" not in lines[1]


def test_text_lines_redact_a_traceback_too(capsys: pytest.CaptureFixture[str]) -> None:
    configured(capsys)
    try:
        raise ValueError("https://api.example/auth/token?uid=1&sign=f00dfeed")
    except ValueError:
        logging.getLogger("worker.runner").exception("failed")
    said = capsys.readouterr().err
    assert " ERROR worker.runner: failed" in said and "sign=***" in said
    assert "f00dfeed" not in said


def test_the_level_setting_hides_what_is_below_it(capsys: pytest.CaptureFixture[str]) -> None:
    configured(capsys, CTQ_LOG_LEVEL="warning")
    logging.getLogger("worker.records").info("job j1 callback done")
    logging.getLogger("worker.runner").warning("job j1: HTTP 429")
    [said] = capsys.readouterr().err.splitlines()
    assert said.endswith("WARNING worker.runner: job j1: HTTP 429")


def test_python_warnings_become_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configured(capsys, CTQ_LOG_FORMAT="json")
    logging.getLogger("py.warnings").warning("SecurityWarning: superuser")
    assert json.loads(capsys.readouterr().err)["logger"] == "py.warnings"


def test_log_settings_take_any_case_and_refuse_other_values() -> None:
    settings = Settings(_env_file=None, CTQ_LOG_FORMAT="JSON", CTQ_LOG_LEVEL="debug")
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    with pytest.raises(ValidationError, match="CTQ_LOG_FORMAT"):
        Settings(_env_file=None, CTQ_LOG_FORMAT="xml")


def test_beats_line_for_a_due_entry_is_the_one_cli_logs_knows() -> None:
    import celery.beat

    assert f"'{logs.BEAT_SENDING}'" in inspect.getsource(celery.beat.Scheduler.apply_entry)
