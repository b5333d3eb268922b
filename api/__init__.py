"""The HTTP API (``ctq serve``): the producer, status and steering of the CLI over HTTP."""
