"""Job models, the thin Celery tasks (one module per job kind) and the producer API."""
