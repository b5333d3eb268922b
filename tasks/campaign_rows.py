"""Reading a campaign file (.csv or .jsonl) into validated callback rows.

CSV columns are callback fields (``phone`` required; ``tags`` separated by ``|``; ``unitId``
a number); JSONL lines are callback bodies. ``routeKey`` comes from ``--route-key`` unless a
row gives its own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.models import CallbackJob
from tasks.validation import JobValidationError, Problem, validate
from worker.errors import InvalidInput

Progress = Callable[[int, int], None]
NO_ROWS = "the file has no rows (empty, or a header only); nothing was loaded"


@dataclass
class Rows:
    """The valid rows, and the refused ones with their problems."""

    valid: list[CallbackJob] = field(default_factory=list)
    refused: list[tuple[int, Any, list[Problem]]] = field(default_factory=list)


def read_rows(path: Path, route_key: str, progress: Progress | None = None) -> Rows:
    """Validate every row of ``path``; ``progress(done, total)`` is called as it goes."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path} is not UTF-8 text (byte {exc.start + 1}); nothing was loaded"
        ) from None
    return rows_of_text(text, path.suffix.lower() == ".csv", route_key, progress)


def rows_of_text(text: str, is_csv: bool, route_key: str, progress: Progress | None = None) -> Rows:
    """``read_rows`` for a file's text (CSV, else JSONL), e.g. an uploaded one."""
    try:
        items = list(_csv(text) if is_csv else _jsonl(text))
    except csv.Error as exc:
        raise InvalidInput(f"not valid CSV ({exc}); nothing was loaded") from None
    rows = Rows()
    for done, (line, data) in enumerate(items, start=1):
        if progress and (done % 500 == 0 or done == len(items)):
            progress(done, len(items))
        if isinstance(data, str):  # a line that is not JSON
            rows.refused.append((line, None, [Problem(line, "(json)", data)]))
            continue
        if isinstance(data, dict):
            data = {"routeKey": route_key, **data}
        try:
            rows.valid.append(validate(CallbackJob, data, line))
        except JobValidationError as exc:
            rows.refused.append((line, data, exc.problems))
    return rows


def write_rejects(path: Path, rows: Rows) -> None:
    """One JSON line per refused row: its line, the row, and every reason."""
    with path.open("w", encoding="utf-8") as out:
        for line, data, problems in rows.refused:
            reasons = [f"{p.path}: {p.reason}" for p in problems]
            out.write(
                json.dumps({"line": line, "row": data, "problems": reasons}, ensure_ascii=False)
                + "\n"
            )


def _csv(text: str) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    headers = [name.strip() for name in reader.fieldnames or ()]
    for name in headers:
        if name and headers.count(name) > 1:
            raise InvalidInput(f"line 1: duplicate header {name!r}; nothing was loaded")
    rows = 0
    for row in reader:
        rows += 1
        extra = row.pop(None, None)
        data: dict[str, Any] = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        if extra:
            data["(cells beyond the header)"] = extra
        if "tags" in data:
            data["tags"] = [t for t in str(data["tags"]).split("|") if t]
        if "unitId" in data and str(data["unitId"]).isdigit():
            data["unitId"] = int(data["unitId"])
        yield reader.line_num, data
    if not rows:
        raise InvalidInput(NO_ROWS)


def _jsonl(text: str) -> Iterator[tuple[int, Any]]:
    rows = 0
    # "\n" only: a JSON string may hold U+2028 and other Unicode line breaks.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if raw.strip():
            rows += 1
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg}"
    if not rows:
        raise InvalidInput(NO_ROWS)
