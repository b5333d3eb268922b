"""``ctq status --watch``: what ``ctq status`` prints, again every few seconds, for a terminal
on a server without a browser. Ctrl-C is how one leaves it, so it ends with status 0."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import redis

from config import Settings
from worker.errors import CtqError
from worker.outage import TRANSIENT
from worker.redaction import redact_text
from worker.redis_conn import connect

# The screen is cleared once; each redraw then goes home, clears each line to its end and the
# rest of the screen below: in place, without the blink of clearing the whole screen each time.
CLEAR_SCREEN, HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[2J", "\x1b[H", "\x1b[K", "\x1b[J"


class Snapshots:
    """One snapshot per call: the status (text, or a JSON line), or the error that kept it
    from being read, so the view says what is wrong and tries again next time."""

    def __init__(
        self,
        settings: Settings,
        read: Callable[[redis.Redis], dict[str, Any]],
        render: Callable[[dict[str, Any]], str],
        as_json: bool,
    ) -> None:
        self.settings, self.read, self.render, self.as_json = settings, read, render, as_json
        self.client: redis.Redis | None = None

    def __call__(self) -> str:
        try:
            if self.client is None:
                self.client = connect(self.settings)
            data = self.read(self.client)
        except CtqError as exc:  # no stack in this directory (yet), an unknown job
            return self._error(str(exc))
        except TRANSIENT as exc:
            return self._error(f"Redis is unavailable: {exc}")
        except redis.RedisError as exc:
            return self._error(f"Redis answered with an error: {exc}")
        if self.as_json:
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return self.render(data)

    def _error(self, message: str) -> str:
        message = redact_text(message)
        if self.as_json:
            return json.dumps({"error": message, "time": time.time()}, ensure_ascii=False)
        return f"ctq: {message} (trying again)"


def watch(
    snapshot: Callable[[], str],
    out: TextIO,
    interval: float,
    *,
    redraw: bool,
    between: str = "\n",
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> int:
    """Show a snapshot every ``interval`` seconds until Ctrl-C (or ``rounds`` of them): redrawn
    in place under a header on a terminal, else one after another with ``between`` after each.
    Ctrl-C is how one leaves it: exit status 0, nothing said."""
    shown = 0
    try:
        while rounds is None or shown < rounds:
            text = snapshot()
            if redraw:
                header = (
                    f"every {interval:g} s: ctq status   {datetime.now():%H:%M:%S}   Ctrl-C quits"
                )
                lines = [header, "", *text.splitlines()]
                drawn = "".join(line + CLEAR_LINE + "\n" for line in lines)
                out.write(("" if shown else CLEAR_SCREEN) + HOME + drawn + CLEAR_BELOW)
            else:
                out.write(text + "\n" + between)
            out.flush()
            shown += 1
            sleep(interval)
    except KeyboardInterrupt:
        if redraw:
            out.write("\n")
    return 0


def run(snapshots: Snapshots, interval: float) -> int:
    """Watch on stdout: redrawn on a terminal, NDJSON with ``--json``, else blank-separated."""
    if snapshots.as_json:
        return watch(snapshots, sys.stdout, interval, redraw=False, between="")
    return watch(snapshots, sys.stdout, interval, redraw=sys.stdout.isatty())
