"""All job kinds, by the name users give them (``ctq enqueue KIND``)."""

from __future__ import annotations

from tasks import callback, comment, pool_update
from tasks.kind import JobKind

KINDS: dict[str, JobKind] = {k.name: k for k in (comment.KIND, callback.KIND, pool_update.KIND)}
TASK_MODULES = ("tasks.comment", "tasks.callback", "tasks.pool_update")
