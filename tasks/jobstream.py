"""From input lines to jobs, one at a time: validated, packed (comments), and keyed.

Nothing here holds a whole input: a comment job is built as soon as 100 valid leads are in,
and each job gets its idempotency key as it passes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tasks.kind import JobKind
from tasks.models import CommentJob, CommentLead
from tasks.models.comment import MAX_LEADS_PER_REQUEST
from tasks.models.common import ApiModel
from tasks.registry import KINDS
from tasks.validation import JobValidationError, Problems, valid_items, validate

Job = tuple[JobKind, dict[str, Any], str | None]  # kind, API body, idempotency key


def callback_kind(data: dict[str, Any] | ApiModel) -> JobKind:
    """Calltouch's callback kind, or Pozvonim's when the body says ``"provider": "pozvonim"``."""
    provider = data.get("provider") if isinstance(data, dict) else getattr(data, "provider", None)
    return KINDS["pozvonim-call"] if provider == "pozvonim" else KINDS["callback"]


def pack_leads(leads: Sequence[CommentLead]) -> list[CommentJob]:
    """Leads in input order, up to 100 per request."""
    step = MAX_LEADS_PER_REQUEST
    return [CommentJob(comments=list(leads[i : i + step])) for i in range(0, len(leads), step)]


def comment_jobs(
    items: Iterable[tuple[int, Any]], problems: Problems
) -> Iterator[tuple[JobKind, ApiModel]]:
    """Leads validated one by one and packed, in input order, 100 per comment job."""
    kind = KINDS["comment"]
    leads: list[CommentLead] = []
    for _, lead in valid_items(CommentLead, items, problems):
        leads.append(lead)
        if len(leads) == MAX_LEADS_PER_REQUEST:
            yield kind, CommentJob(comments=leads)
            leads = []
    if leads:
        yield kind, CommentJob(comments=leads)


def line_jobs(
    kind_name: str, items: Iterable[tuple[int, Any]], problems: Problems
) -> Iterator[tuple[JobKind, ApiModel]]:
    """One job per line; a callback line is validated against its provider's model."""
    for line, data in items:
        if kind_name == "callback":
            kind = callback_kind(data) if isinstance(data, dict) else KINDS["callback"]
        else:
            kind = KINDS[kind_name]
        try:
            yield kind, validate(kind.model, data, line)
        except JobValidationError as exc:
            problems.extend(exc.problems)


def jobs_of(
    kind_name: str, items: Iterable[tuple[int, Any]], problems: Problems
) -> Iterator[tuple[JobKind, ApiModel]]:
    """The jobs of ``ctq enqueue KIND`` input: one per line, or one per 100 leads."""
    if kind_name == "comment":
        return comment_jobs(items, problems)
    return line_jobs(kind_name, items, problems)


def keyed(
    jobs: Iterable[tuple[JobKind, ApiModel]], key: str | None, *, derive: bool
) -> Iterator[Job]:
    """Each job with its body as the API receives it and its idempotency key: ``KEY`` for
    one job and ``KEY:N`` for several; else, with ``derive``, one derived from its content
    (``derived_key``); else none. Kinds deduplicated by body fall back to ``auto_key``."""
    bodies = ((kind, body.api_body()) for kind, body in jobs)
    if key is not None:
        yield from numbered(bodies, key)
        return
    seen: Counter[bytes] = Counter()
    for kind, payload in bodies:
        if kind.dedupe_by_body:
            yield kind, payload, auto_key(kind.name, payload)
        else:
            yield kind, payload, derived_key(kind, payload, seen) if derive else None


def numbered(bodies: Iterable[tuple[JobKind, dict[str, Any]]], key: str) -> Iterator[Job]:
    """``KEY`` for a single job; ``KEY:1`` … ``KEY:N`` for several (known by looking one
    job ahead, so the input is still read one job at a time)."""
    stream = iter(bodies)
    first = next(stream, None)
    if first is None:
        return
    second = next(stream, None)
    if second is None:
        yield (*first, key)
        return
    yield (*first, f"{key}:1")
    yield (*second, f"{key}:2")
    for n, (kind, payload) in enumerate(stream, start=3):
        yield kind, payload, f"{key}:{n}"


def derived_key(kind: JobKind, payload: dict[str, Any], seen: Counter[bytes]) -> str:
    """The key of a job from its content: the N-th job with the same body in this input is
    ``input:KIND:HASH:N``, so identical lines stay separate jobs while the same input sent
    again maps onto the same keys. ``seen`` counts the bodies of the input so far (by raw
    digest: half the memory of the hex text)."""
    digest = fingerprint(payload)
    raw = bytes.fromhex(digest)
    seen[raw] += 1
    return f"input:{kind.name}:{digest}:{seen[raw]}"


def fingerprint(payload: dict[str, Any]) -> str:
    """A hash of a job's body, independent of key order."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def auto_key(kind: str, payload: dict[str, Any]) -> str:
    """The default idempotency key of a callback: its kind and a hash of its body."""
    return f"auto:{kind}:{fingerprint(payload)}"
