"""Consuming from Redis without losing the message taken while Redis refuses writes.

kombu's Redis transport takes a message with ``BRPOP`` and only then records it as unacked
(``QoS.append``: a ZADD and an HSET). ``BRPOP`` still works on a full Redis (maxmemory with
noeviction) and the record does not, and a reply lost to a dropped connection ends the same
way: the message has left its queue, is in no unacked set, and kombu drops it when the
consumer restarts. The job then stays "queued" forever.

ctq's QoS keeps the taken message in memory and records it as soon as Redis accepts writes
again: the consumer waits (nothing else can be taken meanwhile anyway) instead of restarting.
Only a worker killed during that wait loses the message it holds; that window is in the
README. kombu has no option for the QoS class, so ``install`` sets it on kombu's Redis
channel (the Sentinel channel inherits it) in the worker process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker import state as worker_state
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.scheduling import round_robin_cycle

from worker import keys
from worker.outage import TRANSIENT

log = logging.getLogger(__name__)

# How often a held message's record is tried again, and how often the wait is logged.
RETRY_EVERY = 0.5
LOG_EVERY = 10.0


def _stopping() -> bool:
    return bool(worker_state.should_stop or worker_state.should_terminate)


class RecordingQoS(kombu_redis.QoS):
    """kombu's Redis QoS, except that a message once taken is recorded whatever it takes."""

    sleep = staticmethod(time.sleep)

    def append(self, message: Any, delivery_tag: Any) -> None:
        started, last_log = time.monotonic(), float("-inf")
        while True:
            try:
                super().append(message, delivery_tag)  # one MULTI/EXEC: safe to repeat
                break
            except TRANSIENT as exc:
                job = (message.headers or {}).get("id", "?")
                if _stopping():
                    log.error(
                        "job %s: its message was taken from the queue but Redis refuses to "
                        "record it (%s) and the worker is stopping; enqueue the job again",
                        job,
                        exc,
                    )
                    raise
                now = time.monotonic()
                if now - last_log >= LOG_EVERY:
                    log.warning(
                        "job %s: taken from the queue, waiting for Redis to record it (%s)",
                        job,
                        exc,
                    )
                    last_log = now
                self.sleep(RETRY_EVERY)
        if time.monotonic() - started > RETRY_EVERY:
            log.warning("message of job %s recorded; consuming again", message.headers.get("id"))

    @property
    def connection_released(self) -> bool:
        """After a lost connection Celery closes the consumer's channel and releases its
        transport, but the messages its pool processes still run are acked (or rejected) on
        that channel when they end. kombu would then build a client from connection info
        that is gone and raise AttributeError, an "unrecoverable error" that stops the whole
        worker. The messages are among the unacked in Redis either way: ``worker.recovery``
        forgets each whose job is settled and puts back each that still has to run (a
        maintenance tick comes back at the visibility timeout, kombu's own sweep)."""
        transport = self.channel.connection
        return transport is None or transport.client is None

    def ack(self, delivery_tag: Any) -> None:
        if self.connection_released:
            log.info(
                "message %s ended after its connection was lost: left to recovery", delivery_tag
            )
            virtual.QoS.ack(self, delivery_tag)
            return
        # ZREM and HDEL only free memory, so a full Redis runs them, except inside MULTI (as
        # kombu sends them), where a full Redis refuses every command. The message goes first:
        # a failure in between leaves an index entry alone, which kombu's sweep drops.
        with self.channel.conn_or_acquire() as client:  # type: ignore[attr-defined]
            pipe = client.pipeline(transaction=False)
            pipe.hdel(self.unacked_key, delivery_tag).zrem(self.unacked_index_key, delivery_tag)
            pipe.execute()
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if not requeue or self.connection_released:
            self.ack(delivery_tag)
            return
        try:
            super().reject(delivery_tag, requeue=True)
        except TRANSIENT as exc:
            # It stays among the unacked: ``worker.recovery`` puts it back once Redis takes
            # writes (its job holds no lease any more), the visibility timeout at the latest.
            log.warning("message %s left unacked to be put back later (%s)", delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)

    def restore_unacked(self, client: Any = None) -> None:
        # kombu puts back the messages this consumer holds when it closes the channel; Celery
        # closes it a second time after a lost connection, with the transport released.
        held = len(self._delivered or ())
        if self.connection_released:
            log.warning(
                "%d message(s) held at a lost connection left among the unacked to be put back",
                held,
            )
            return
        try:
            super().restore_unacked(client)
        except TRANSIENT as exc:
            log.warning("%d message(s) held left among the unacked to be put back (%s)", held, exc)

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        # kombu's periodic visibility-timeout sweep: on a full Redis it fails with OOM, which
        # kombu would treat as fatal to the consumer. The next tick sweeps again.
        try:
            super().restore_visible(*args, **kwargs)
        except TRANSIENT as exc:
            log.debug("visibility sweep skipped: Redis unavailable (%s)", exc)


def install() -> None:
    """Make every kombu Redis channel created from now on in this process use ``RecordingQoS``."""
    kombu_redis.Channel.QoS = RecordingQoS


LANE_RANK = {lane: rank for rank, lane in enumerate(keys.CONSUME_ORDER)}


class LaneCycle(round_robin_cycle):  # type: ignore[type-arg]
    """The order a worker takes from its queues (``queue_order_strategy``): maintenance, then
    every account's realtime queue, then every bulk queue, as kombu's ``priority`` does by
    lane; within a lane the queue just taken from goes last (kombu's round robin), so each
    process takes from the accounts in turn and none waits behind another's backlog."""

    def consume(self, n: int) -> list[str]:  # type: ignore[override]
        # A list, not an iterator: kombu reads it once per priority step. The sort is stable:
        # within a lane the queues keep the order ``rotate`` gave them.
        items: list[str] = self.items or []
        return sorted(items[:n], key=lambda name: LANE_RANK.get(keys.lane_of(name), len(LANE_RANK)))
