"""One Producer per API process, made when first needed: the API starts (and answers
``/healthz``) while Redis is still away, and reuses one connection pool once it is there."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from config import Settings
from tasks.batch import Enqueued
from tasks.producer import Producer, QueueUnavailable, discard_quietly
from tasks.validation import Problems
from worker.messages import MessageBuilder
from worker.redis_conn import connect_async


class Backend:
    """The process's Producer (and its Redis client), shared by every request thread; for
    the event loop, a redis.asyncio client and a message builder of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        # The serving event loop (set while the app's lifespan runs), and its own client and
        # message builder, for an enqueue of one chunk.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_client: redis.asyncio.Redis | None = None
        self._loop_builder: MessageBuilder | None = None

    def producer(self) -> Producer:
        """The Producer; raises ``QueueUnavailable`` while Redis cannot be reached."""
        if self._producer is None:
            with self._lock:
                if self._producer is None:
                    self._producer = Producer(self.settings)
        return self._producer

    def redis(self) -> redis.Redis:
        return self.producer().redis

    async def enqueue_at_once(
        self,
        kind_name: str,
        items: Iterable[tuple[int, Any]],
        problems: Problems,
        idempotency_key: str | None,
        not_before: float | None,
        account: str,
    ) -> Enqueued | None:
        """``Producer.from_items_at_once`` on the event loop's client and builder: no thread
        for an input of one chunk. The Producer and the builder are made in the threadpool,
        as making each blocks on a connection. None outside the serving loop (a test client
        runs a loop per request; a client's connections belong to one loop)."""
        if self._loop is not asyncio.get_running_loop():
            return None
        if self._loop_builder is None:
            await run_in_threadpool(self._make_loop_builder)
        producer, builder = self.producer(), self._loop_builder
        assert builder is not None
        if self._loop_client is None:
            self._loop_client = connect_async(self.settings, producer.url)
        try:
            return await producer.from_items_at_once(
                self._loop_client,
                builder,
                kind_name,
                items,
                problems,
                idempotency_key,
                not_before,
                account,
            )
        except QueueUnavailable:
            if self._loop_builder is builder:  # its channel may hold a dead connection
                self._loop_builder = None
                await run_in_threadpool(discard_quietly, builder.close)
            raise

    def _make_loop_builder(self) -> None:
        producer = self.producer()
        with self._lock:
            if self._loop_builder is None:
                self._loop_builder = producer.message_builder()
                # The Celery app and kombu's transport, made now, live as long as the process:
                # out of later collections too (see ``api.app.freeze_heap``).
                gc.freeze()

    def serve_in(self, loop: asyncio.AbstractEventLoop) -> None:
        """Enqueue inputs of one chunk in ``loop``, the server's, until ``aclose``."""
        self._loop = loop

    async def aclose(self) -> None:
        self._loop = None
        if self._loop_client is not None:
            await self._loop_client.aclose()
            self._loop_client = None
        self.close()

    def close(self) -> None:
        if self._loop_builder is not None:
            discard_quietly(self._loop_builder.close)
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
