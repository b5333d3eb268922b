"""Input is read one line at a time, split at "\\n" only, with its line numbers."""

from __future__ import annotations

import argparse
import io
import itertools
import json
from pathlib import Path

from cli.enqueue import input_lines
from tasks.validation import Problems, json_lines, split_lines


def test_bytes_are_split_at_newlines_only_and_decoded_line_by_line() -> None:
    raw = (
        '{"a": "one\u2028two\u0085three"}\r\n'.encode()
        + b"\n  \n"
        + b'{"b": "\xff"}\n'
        + b'{"c": \n'
        + b'{"d": 4}'
    )
    problems = Problems()
    items = list(json_lines(io.BytesIO(raw), problems))
    assert items == [(1, {"a": "one\u2028two\u0085three"}), (6, {"d": 4})]
    assert [str(p) for p in problems.kept] == [
        "line 4: (input): not valid UTF-8 at byte 8",
        "line 5: (json): not valid JSON: Expecting value at column 7",
    ]


def test_text_is_split_lazily_like_str_split() -> None:
    for text in ("", "a", "a\n", "a\n\nb", "\u2028\n\u0085"):
        assert list(split_lines(text)) == text.split("\n")


def test_an_empty_input_is_a_problem() -> None:
    problems = Problems()
    assert list(json_lines(split_lines("\n \n"), problems)) == []
    assert [str(p) for p in problems.kept] == ["line 1: (input): no jobs: the input is empty"]


def test_a_file_is_read_as_it_is_consumed_not_whole(tmp_path: Path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(100_000)))
    args = argparse.Namespace(json=None, file=str(path))
    with input_lines(args) as lines:
        first = list(itertools.islice(lines, 3))
        assert first == [b'{"n": 0}\n', b'{"n": 1}\n', b'{"n": 2}\n']
        handle = lines.gi_frame.f_locals["handle"]  # type: ignore[attr-defined]
        assert handle.tell() < path.stat().st_size // 10  # a buffer's worth, not the file
