"""Staging leads for the nightly run, all-or-nothing, whatever the size of the input.

Leads are validated one by one and pushed, a chunk at a time, to a list of this producer's
own (``keys.staging_comments``); when the whole input is valid ``move_staged.lua`` moves that
list onto ``STAGED_COMMENTS`` in one step. A refused input's list is deleted; a killed
producer's list expires ``STAGING_TTL`` seconds after its last chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import redis

from config.accounts import DEFAULT as DEFAULT_ACCOUNT
from tasks.batch import RECEIPT_TTL, STAGING_TTL, StagingExpired
from tasks.models import CommentLead
from tasks.validation import Problems, valid_items
from worker import failover, keys

LEADS_CHUNK = 1000  # leads pushed at a time


class LeadStaging:
    """One input's leads on their way to the nightly staging list."""

    def __init__(
        self, client: redis.Redis, ttl: int = STAGING_TTL, account: str = DEFAULT_ACCOUNT
    ) -> None:
        self.client, self.ttl = client, ttl
        staging_id = uuid.uuid4().hex
        self.key = keys.staging_comments(staging_id)
        self.receipt = keys.staging_receipt(staging_id)
        self.target = keys.staged_comments(account)
        self.pushed = 0

    def read(self, items: Iterable[tuple[int, Any]], problems: Problems) -> None:
        """Validate every lead; push the valid ones while the input has no problem."""
        chunk: list[str] = []
        for _, lead in valid_items(CommentLead, items, problems):
            if problems:
                chunk.clear()
                continue  # refused already: read on only for the problems
            chunk.append(lead.model_dump_json(exclude_none=True))
            if len(chunk) >= LEADS_CHUNK:
                self._push(chunk)
                chunk = []
        if chunk and not problems:
            self._push(chunk)

    def _push(self, chunk: list[str]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(self.key, *chunk)
            pipe.expire(self.key, self.ttl)
            pipe.execute()
        self.pushed += len(chunk)

    def move(self) -> int:
        """Put every pushed lead on the nightly staging list; how many are staged now."""
        if not self.pushed:
            return int(self.client.llen(self.target))
        replicas = failover.point_at_primary(self.client)
        staged = int(
            failover.run_confirmed(
                self.client,
                "move_staged",
                [self.key, self.target, self.receipt],
                [self.pushed, RECEIPT_TTL],
                replicas,
                wrote=lambda staged: int(staged) >= 0,  # -1: the list expired, nothing moved
            )
        )
        if staged < 0:
            raise StagingExpired(
                f"the validated leads are gone: they expired (the input paused > {self.ttl} s), "
                "or Redis failed over meanwhile"
            )
        return staged

    def moved(self) -> bool:
        """After a lost reply: did the move run? Its receipt says, read on the primary the
        sentinels name now (one on a primary being replaced does not count)."""
        return failover.confirmed_read(self.client, self.receipt, RECEIPT_TTL) is not None

    def discard(self) -> None:
        self.client.unlink(self.key)
