"""Replaying dead letters: validate each payload again and enqueue it as a new job."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.kind import JobKind
from tasks.models.common import ApiModel
from tasks.producer import Producer
from tasks.registry import KINDS
from tasks.validation import JobValidationError, Problem, validate
from worker import deadletter, keys
from worker.errors import InvalidInput, NotFound
from worker.messages import MessageBuilder


@dataclass
class Replayed:
    """What a replay did: new job id per dead letter, why it was refused, or that it was
    gone (purged while the replay ran)."""

    enqueued: dict[str, str] = field(default_factory=dict)
    refused: dict[str, list[Problem]] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)


def choose(
    client: redis.Redis, ids: list[str], every: bool, code: int | None, doing: str
) -> list[dict[str, Any]]:
    """The dead letters a replay or purge names (``ctq dlq`` and the HTTP API alike): by id,
    or all of them, or those with ``code``. Naming none, or ids together with a selection, is
    invalid input; an unknown id refuses the whole command (nothing is ``doing``)."""
    by_filter = every or code is not None
    if not (ids or by_filter):
        raise InvalidInput("name dead letters by id, or select them all or by code")
    if ids and by_filter:
        raise InvalidInput("name dead letters by id or select them all / by code, not both")
    chosen = select(deadletter.all_records(client), ids, code)
    unknown = sorted(set(ids) - {r["id"] for r in chosen})
    if unknown:
        raise NotFound(f"no dead letter {', '.join(unknown)}; nothing was {doing}")
    return chosen


def select(records: list[dict[str, Any]], ids: list[str], code: int | None) -> list[dict[str, Any]]:
    """The records named by ``ids``, or with API code / HTTP status ``code``, or all."""
    if ids:
        wanted = set(ids)
        return [r for r in records if r["id"] in wanted]
    if code is not None:
        return [r for r in records if code in (r.get("code"), r.get("http_status"))]
    return records


def replay(producer: Producer, records: list[dict[str, Any]]) -> Replayed:
    """Enqueue each record's payload again (valid ones only) and drop its dead letter, both in
    one transaction: a replay broken off anywhere leaves the dead letter and no new job, or
    the new job and no dead letter, so replaying it again, even days later, never enqueues
    it twice. A replay that finds the dead letter gone (replayed meanwhile) answers with the
    job it was replayed as; one purged meanwhile is reported gone."""
    result = Replayed()
    for record in records:
        kind = KINDS[record["kind"]]
        try:
            body = validate(kind.model, record["payload"])
        except JobValidationError as exc:
            result.refused[record["id"]] = exc.problems
            continue
        new_id = _in_place_of(producer, record, kind, body)
        if new_id is None:
            result.gone.append(record["id"])
        else:
            result.enqueued[record["id"]] = new_id
    return result


def _in_place_of(
    producer: Producer,
    record: dict[str, Any],
    kind: JobKind,
    body: ApiModel,
) -> str | None:
    """Enqueue ``body`` and delete ``record``'s dead letter at once; the new job's id, or that
    of the replay that took the dead letter first (None if it was purged)."""
    dead_id = record["id"]
    # No account in dead letters from before accounts; an unknown one is refused here.
    account = producer.settings.account(record.get("account")).name
    payload = body.api_body()
    replayed_as = keys.replayed(dead_id)

    def move(pipe: redis.client.Pipeline, builder: MessageBuilder) -> str | None:
        if not pipe.hexists(keys.DLQ, dead_id):
            found = pipe.get(replayed_as)
            return None if found is None else str(found)
        pipe.multi()
        new_id = producer.add_job(pipe, builder, kind, payload, time.time(), account=account)
        pipe.hdel(keys.DLQ, dead_id)
        pipe.zrem(keys.DLQ_INDEX, dead_id)
        pipe.set(replayed_as, new_id, ex=producer.settings.idempotency_window)
        return new_id

    # Taken again from the start if a dead letter is written or removed meanwhile (WATCH).
    return producer.transact(move, keys.DLQ)
