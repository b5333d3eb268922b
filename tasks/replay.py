"""Replaying dead letters: validate each payload again and enqueue it as a new job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis

from tasks.producer import Producer
from tasks.registry import KINDS
from tasks.validation import JobValidationError, Problem, validate
from worker import deadletter
from worker.errors import InvalidInput, NotFound


@dataclass
class Replayed:
    """What a replay did: new job id per dead letter, or why it was refused."""

    enqueued: dict[str, str] = field(default_factory=dict)
    refused: dict[str, list[Problem]] = field(default_factory=dict)


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
    """Enqueue each record's payload again (valid ones only) and drop its dead letter.

    The new job's idempotency key is ``replay:<old id>``: replaying twice enqueues once.
    """
    result = Replayed()
    for record in records:
        kind = KINDS[record["kind"]]
        try:
            body = validate(kind.model, record["payload"])
        except JobValidationError as exc:
            result.refused[record["id"]] = exc.problems
            continue
        account = record.get("account")  # none in dead letters from before accounts
        [new_id] = producer.enqueue(kind, [body], [f"replay:{record['id']}"], account=account)
        deadletter.remove(producer.redis, [record["id"]])
        result.enqueued[record["id"]] = new_id
    return result
