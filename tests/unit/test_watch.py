"""``ctq status --watch``'s loop: snapshots one after another or redrawn, errors shown, Ctrl-C."""

from __future__ import annotations

import io
import json
from typing import Any

import fakeredis
import pytest
import redis

from cli import watch
from config import Settings


def snapshots(*texts: str) -> Any:
    queue = list(texts)
    return lambda: queue.pop(0)


def test_snapshots_follow_each_other_with_a_blank_line_between() -> None:
    out = io.StringIO()
    slept: list[float] = []
    assert (
        watch.watch(snapshots("a\nb", "c"), out, 0.5, redraw=False, sleep=slept.append, rounds=2)
        == 0
    )
    assert out.getvalue() == "a\nb\n\nc\n\n"
    assert slept == [0.5, 0.5]


def test_on_a_terminal_each_snapshot_is_drawn_over_the_last() -> None:
    out = io.StringIO()
    watch.watch(snapshots("one", "two"), out, 2, redraw=True, sleep=lambda _: None, rounds=2)
    first, second = out.getvalue().split(watch.CLEAR_BELOW)[:2]
    assert first.startswith(watch.CLEAR_SCREEN + watch.HOME) and "one" + watch.CLEAR_LINE in first
    assert "every 2 s: ctq status" in first and "Ctrl-C quits" in first
    assert second.startswith(watch.HOME) and watch.CLEAR_SCREEN not in second and "two" in second


def test_ctrl_c_ends_the_watch_with_status_0() -> None:
    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    out = io.StringIO()
    assert watch.watch(snapshots("a"), out, 1, redraw=False, sleep=interrupted) == 0
    assert out.getvalue() == "a\n\n"


REFUSED = "Error 111 connecting to 127.0.0.1:6399. Connection refused."


class Flaky:
    """Reads the status from Redis, except while ``down``."""

    def __init__(self) -> None:
        self.down = False

    def __call__(self, client: redis.Redis) -> dict[str, Any]:
        if self.down:
            raise redis.ConnectionError(
                "Error 111 connecting to 127.0.0.1:6399. Connection refused."
            )
        return {"queues": {"realtime": int(client.llen("q"))}}


@pytest.mark.parametrize("as_json", [False, True])
def test_redis_going_away_is_shown_and_the_next_snapshot_reads_again(as_json: bool) -> None:
    read = Flaky()
    shown = watch.Snapshots(
        Settings(_env_file=None), read, lambda d: f"queues {d['queues']}", as_json
    )
    shown.client = fakeredis.FakeRedis(decode_responses=True)
    seen = [shown()]
    read.down = True
    seen.append(shown())
    read.down = False
    seen.append(shown())
    if as_json:
        first, away, back = (json.loads(line) for line in seen)
        assert first == back == {"queues": {"realtime": 0}}
        assert away["error"].startswith("Redis is unavailable: Error 111")
    else:
        assert seen[0] == seen[2] == "queues {'realtime': 0}"
        assert seen[1] == f"ctq: Redis is unavailable: {REFUSED} (trying again)"
