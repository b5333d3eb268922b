"""One stack per data directory: ``ctq up`` holds a lock on ``CTQ_DATA_DIR/stack.lock`` for
as long as it runs, so a second ``ctq up`` there says where the first one runs and stops,
instead of starting a second stack that would stop the first one's Redis on its way out.
The kernel drops the lock when the process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from worker.errors import CtqError

LOCK_NAME = "stack.lock"


class StackRunning(CtqError):
    """Another ``ctq up`` holds the data directory."""


class StackLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise ``StackRunning`` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the stack's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StackRunning(
                f"a ctq stack already runs in {self.path.parent.resolve()} (ctq up, pid "
                f"{holder}); use it, stop it (Ctrl-C in its terminal), or set another "
                "CTQ_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None
