"""Replaying dead letters: validate each payload again and enqueue it as a new job."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.producer import Producer
from tasks.registry import KINDS
from tasks.validation import JobValidationError, Problem, validate
from worker import deadletter


@dataclass
class Replayed:
    """What a replay did: new job id per dead letter, or why it was refused."""

    enqueued: dict[str, str] = field(default_factory=dict)
    refused: dict[str, list[Problem]] = field(default_factory=dict)


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
        [new_id] = producer.enqueue(kind, [body], [f"replay:{record['id']}"])
        deadletter.remove(producer.redis, [record["id"]])
        result.enqueued[record["id"]] = new_id
    return result
