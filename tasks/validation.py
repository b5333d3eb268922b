"""Turning pydantic errors into the one-line-per-problem reasons users see."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

# CTQ_MAX_LINE_BYTES' default: a line is one job (one lead for comments), a few KiB at most.
MAX_LINE_BYTES = 65536
BOM = "\ufeff"

# Problems kept (and printed) per input; the rest are only counted, so that a bad file of a
# million lines cannot fill memory with its reasons.
PROBLEMS_KEPT = 1000


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused: ``line N: field.path: reason``."""

    line: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path}: {self.reason}"


class JobValidationError(InvalidInput):
    """The input was refused; nothing from it was enqueued. ``more`` problems were found
    beyond those listed in ``problems``."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        self.problems = problems
        self.more = more
        lines = [str(p) for p in problems] + ([f"and {more} more problem(s)"] if more else [])
        super().__init__("\n".join(lines))


class Problems:
    """The problems of one input as it is read: the first ``keep`` kept, the rest counted."""

    def __init__(self, keep: int = PROBLEMS_KEPT) -> None:
        self.kept: list[Problem] = []
        self.more = 0
        self.keep = keep

    def add(self, problem: Problem) -> None:
        if len(self.kept) < self.keep:
            self.kept.append(problem)
        else:
            self.more += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.add(problem)

    def __bool__(self) -> bool:
        return bool(self.kept) or self.more > 0

    def raise_if_any(self) -> None:
        """Refuse the input if it had any problem."""
        if self:
            raise JobValidationError(self.kept, self.more)


def field_path(loc: Iterable[int | str]) -> str:
    """``("comments", 0, "addComment")`` → ``comments[0].addComment``, as the API writes it."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


def problems_of(exc: ValidationError, line: int) -> list[Problem]:
    return [Problem(line, field_path(err["loc"]), _reason(err)) for err in exc.errors()]


def _reason(err: Any) -> str:
    """pydantic's message; for a value of the wrong JSON type, also what was given (``true``
    where a call id belongs says more than "Input should be a valid integer")."""
    if not str(err["type"]).endswith("_type") or isinstance(err.get("input"), dict | list):
        return str(err["msg"])
    shown = json.dumps(err.get("input"), ensure_ascii=False, default=repr)
    return f"{err['msg']}, got {shown[:60]}{'…' if len(shown) > 60 else ''}"


def validate(model: type[M], data: Any, line: int = 1) -> M:
    """Validate one job body; raise ``JobValidationError`` with every problem in it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise JobValidationError(problems_of(exc, line)) from None


def validate_all(model: type[M], items: Iterable[tuple[int, Any]]) -> list[M]:
    """Validate every ``(line, data)``; collect all problems before refusing any of them."""
    valid: list[M] = []
    problems: list[Problem] = []
    for line, data in items:
        try:
            valid.append(validate(model, data, line))
        except JobValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise JobValidationError(problems)
    return valid


def valid_items(
    model: type[M], items: Iterable[tuple[int, Any]], problems: Problems
) -> Iterator[tuple[int, M]]:
    """Each valid ``(line, data)`` as it comes; the problems of the others go to ``problems``."""
    for line, data in items:
        try:
            yield line, validate(model, data, line)
        except JobValidationError as exc:
            problems.extend(exc.problems)


def split_lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time, as ``text.split("\\n")`` gives them (no copy of
    the whole text). Lines end at "\\n" only: ``str.splitlines()`` would also split inside
    valid JSON strings that hold U+2028, U+0085 and other Unicode line breaks."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def json_lines(
    lines: Iterable[str | bytes], problems: Problems, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, Any]]:
    """JSONL read line by line (blank lines skipped) → ``(line, value)``. Bytes are decoded as
    UTF-8 (a byte order mark before the first line is skipped); bad UTF-8 or JSON, and a line
    longer than ``max_line_bytes``, are problems of their line, and so is an input with no
    line."""
    found = False
    for number, raw in enumerate(lines, start=1):
        text = _line_text(number, raw, problems, max_line_bytes)
        if text is not None and not text.strip():
            continue
        found = True
        if text is None:
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            problems.add(
                Problem(number, "(json)", f"not valid JSON: {exc.msg} at column {exc.colno}")
            )
        except RecursionError:
            problems.add(Problem(number, "(json)", "not valid JSON: nested too deeply"))
        except ValueError:  # an integer of more digits than Python converts
            problems.add(Problem(number, "(json)", "not valid JSON: a number of over 4300 digits"))
    if not found:
        problems.add(Problem(1, "(input)", "no jobs: the input is empty"))


def _line_text(number: int, raw: str | bytes, problems: Problems, limit: int) -> str | None:
    """The text of one line, or None (and its problem) if it is too long or not UTF-8."""
    content = raw.rstrip(b"\r\n") if isinstance(raw, bytes) else raw.rstrip("\r\n")
    size = len(content) if isinstance(content, bytes) else len(content.encode("utf-8", "replace"))
    if size > limit:
        problems.add(
            Problem(
                number, "(input)", f"line of {size} bytes, more than {limit} (CTQ_MAX_LINE_BYTES)"
            )
        )
        return None
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        problems.add(Problem(number, "(input)", f"not valid UTF-8 at byte {exc.start + 1}"))
        return None
    if number == 1:
        text = text.removeprefix(BOM)
    return text.removesuffix("\n").removesuffix("\r")


def parse_json_lines(text: str) -> list[tuple[int, Any]]:
    """JSONL (blank lines skipped) → ``(line, value)``; bad JSON is a problem of its line."""
    problems = Problems()
    items = list(json_lines(split_lines(text), problems))
    problems.raise_if_any()
    return items
