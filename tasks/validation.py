"""Turning pydantic errors into the one-line-per-problem reasons users see."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused: ``line N: field.path: reason``."""

    line: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path}: {self.reason}"


class JobValidationError(ValueError):
    """The input was refused; nothing from it was enqueued."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def field_path(loc: Iterable[int | str]) -> str:
    """``("comments", 0, "addComment")`` → ``comments[0].addComment``, as the API writes it."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


def problems_of(exc: ValidationError, line: int) -> list[Problem]:
    return [Problem(line, field_path(err["loc"]), err["msg"]) for err in exc.errors()]


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


def parse_json_lines(text: str) -> list[tuple[int, Any]]:
    """JSONL (blank lines skipped) → ``(line, value)``; bad JSON is a problem of its line."""
    items: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    # Lines end at "\n" only: str.splitlines() would also split inside valid JSON strings
    # that hold U+2028, U+0085 and other Unicode line breaks.
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            items.append((number, json.loads(raw)))
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(number, "(json)", f"not valid JSON: {exc.msg} at column {exc.colno}")
            )
    if problems:
        raise JobValidationError(problems)
    if not items:
        raise JobValidationError([Problem(1, "(input)", "no jobs: the input is empty")])
    return items
