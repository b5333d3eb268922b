"""One Producer per API process, made when first needed: the API starts (and answers
``/healthz``) while Redis is still away, and reuses one connection pool once it is there."""

from __future__ import annotations

import threading

import redis
from fastapi import Request

from config import Settings
from tasks.producer import Producer


class Backend:
    """The process's Producer (and its Redis client), shared by every request thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def producer(self) -> Producer:
        """The Producer; raises ``QueueUnavailable`` while Redis cannot be reached."""
        if self._producer is None:
            with self._lock:
                if self._producer is None:
                    self._producer = Producer(self.settings)
        return self._producer

    def redis(self) -> redis.Redis:
        return self.producer().redis

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()


def backend(request: Request) -> Backend:
    """FastAPI dependency: the app's Backend."""
    found: Backend = request.app.state.backend
    return found


def producer(request: Request) -> Producer:
    return backend(request).producer()


def client(request: Request) -> redis.Redis:
    return backend(request).redis()


def settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found
