"""All job kinds, by the name users give them (``ctq enqueue KIND``)."""

from __future__ import annotations

from tasks import callback, comment, pool_update, pozvonim_call
from tasks.kind import JobKind

KINDS: dict[str, JobKind] = {
    k.name: k for k in (comment.KIND, callback.KIND, pool_update.KIND, pozvonim_call.KIND)
}
# What `ctq enqueue` takes: a Pozvonim callback is a callback line with "provider": "pozvonim".
ENQUEUE_KINDS = ("comment", "callback", "pool-update")
TASK_MODULES = ("tasks.comment", "tasks.callback", "tasks.pool_update", "tasks.pozvonim_call")
