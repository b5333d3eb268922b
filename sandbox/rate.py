"""The sandbox's rate rule: at most N executed requests in any one-second window per IP."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class SlidingWindow:
    """Strict sliding window over executed requests; refused ones do not count, as with the
    real API ("5 are executed at once and the rest fail with 429")."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, client_ip: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen[client_ip]
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return False
            seen.append(now)
            return True
