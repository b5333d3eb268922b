"""ctq's kombu QoS when the connection to Redis is lost, on a real Redis."""

from __future__ import annotations

import json

import pytest
import redis
from kombu import Connection

from worker import broker, keys
from worker.redis_conn import broker_url


def test_a_channel_whose_connection_was_released_leaves_its_messages_to_recovery(
    redis_url: str, real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    broker.install()
    connection = Connection(broker_url(redis_url))
    channel = connection.channel()
    qos = channel.qos
    assert isinstance(qos, broker.RecordingQoS)
    message = {"headers": {"id": "job-1", "task": "ctq.callback"}, "properties": {}}
    real_redis.hset(keys.KOMBU_UNACKED, "tag-1", json.dumps([message, "", keys.REALTIME]))
    qos._delivered["tag-1"] = object()  # a message this consumer holds, running
    # What Celery's second close after a lost connection finds: the transport released and
    # the channel's client pool gone.
    channel._pool = None
    connection._do_close_transport()

    channel.close()  # kombu alone raises AttributeError here, and Celery stops the worker

    assert "1 message(s) held at a lost connection left among the unacked" in caplog.text
    assert real_redis.hexists(keys.KOMBU_UNACKED, "tag-1")  # worker.recovery puts it back
    assert real_redis.llen(keys.REALTIME) == 0

    # Its job ends in a pool process: Celery acks (or requeues) it on that channel.
    qos.ack("tag-1")
    qos._delivered["tag-2"] = object()
    qos.reject("tag-2", requeue=True)
    assert real_redis.hexists(keys.KOMBU_UNACKED, "tag-1")  # worker.recovery forgets it
    qos._flush()  # kombu forgets acked messages at its next flush
    assert not qos._delivered
