"""``ctq status --watch`` as a real process: snapshots every interval, Redis going away shown
and survived, Ctrl-C (SIGINT) ends it with status 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, RedisServer, ctq_env, free_port, stop_process_group, wait_for

pytestmark = pytest.mark.integration


class Watching:
    """``ctq status --watch ...`` with its stdout read line by line as it comes."""

    def __init__(self, env: dict[str, str], *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "status", "--watch", "--interval", "0.2", *options],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def snapshots(self) -> list[str]:
        """The text snapshots complete so far (each ends with a blank line)."""
        text = "\n".join(self.lines)
        return text.split("\n\n")[:-1] if "\n\n" in text else []

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: SIGINT, as a terminal sends it; the exit status and stderr."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(30)
        assert self.process.stderr
        return status, self.process.stderr.read()

    def stop(self) -> None:
        stop_process_group(self.process)
        self.reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe:
                pipe.close()


@pytest.fixture
def watching() -> Iterator[list[Watching]]:
    started: list[Watching] = []
    yield started
    for watch in started:
        watch.stop()


def test_watch_prints_a_snapshot_per_interval_and_ctrl_c_exits_0(
    redis_url: str, watching: list[Watching], tmp_path: Path
) -> None:
    watch = Watching(ctq_env(REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)))
    watching.append(watch)
    wait_for(lambda: len(watch.snapshots()) >= 2, timeout=60)
    for snapshot in watch.snapshots()[:2]:
        assert snapshot.startswith("queues        realtime 0  bulk 0  maintenance 0")
        assert "\ndead letters  0\n" in snapshot
    assert watch.interrupt() == (0, "")


def test_watch_json_prints_one_object_a_line(
    redis_url: str, watching: list[Watching], tmp_path: Path
) -> None:
    watch = Watching(ctq_env(REDIS_URL=redis_url, CTQ_DATA_DIR=str(tmp_path)), "--json")
    watching.append(watch)
    wait_for(lambda: len(watch.lines) >= 2, timeout=60)
    for line in watch.lines[:2]:
        assert json.loads(line)["queues"] == {"realtime": 0, "bulk": 0, "maintenance": 0}
    assert watch.interrupt() == (0, "")


def test_redis_going_away_is_shown_in_the_view_which_carries_on(
    watching: list[Watching], tmp_path: Path
) -> None:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        watch = Watching(ctq_env(REDIS_URL=server.url, CTQ_DATA_DIR=str(tmp_path)))
        watching.append(watch)
        wait_for(lambda: watch.snapshots(), timeout=60)
        server.stop()
        wait_for(lambda: "ctq: Redis is unavailable" in watch.snapshots()[-1], timeout=60)
        assert watch.process.poll() is None
        assert watch.snapshots()[-1].endswith("(trying again)")
        server.start()
        wait_for(lambda: watch.snapshots()[-1].startswith("queues "), timeout=60)
        assert watch.interrupt() == (0, "")
    finally:
        server.stop()
