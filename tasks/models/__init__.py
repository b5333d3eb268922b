"""Job models: one pydantic model per API method, in the API's own camelCase field names."""

from tasks.models.callback import CallbackJob
from tasks.models.comment import CommentJob, CommentLead
from tasks.models.pool_update import PoolUpdateJob
from tasks.models.pozvonim import PozvonimCallJob

__all__ = ["CallbackJob", "CommentJob", "CommentLead", "PoolUpdateJob", "PozvonimCallJob"]
