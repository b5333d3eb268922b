"""The FastAPI app: ``create_app(settings)``; ``ctq serve`` runs it on uvicorn."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import docs, errors, methods, metrics, openapi
from api.auth import require_key
from api.backend import Backend
from api.body import BodyLimit
from api.dashboard import routes as dashboard
from api.responses import INVALID, UNAUTHORIZED, UNPARSABLE
from api.routes import campaigns, deadletters, health, jobs, staging, status
from config import Settings

DESCRIPTION = """Enqueue Calltouch and Pozvonim jobs, read their state, steer the queues: the
same validation, packing, idempotency and all-or-nothing enqueue as the `ctq` command.

Every request but `/healthz` carries `Authorization: Bearer KEY`, a key of `CTQ_API_KEYS`
(`/metrics` too). The dashboard at `/` signs a browser in with a key once."""

TAGS = [
    {"name": "jobs", "description": "enqueue jobs (all or nothing) and read one job"},
    {"name": "status", "description": "what `ctq status` shows; lift paused lanes"},
    {"name": "dead letters", "description": "jobs that will not be sent again by themselves"},
    {"name": "campaigns", "description": "autodial campaigns"},
    {"name": "nightly", "description": "leads staged for the nightly lead-tagging run"},
    {"name": "health", "description": "liveness and readiness"},
]


def freeze_heap() -> None:
    """Keep the objects made so far (modules, the app, its schemas: about 100,000) out of
    every later garbage collection: a full collection walking them stalls every request of
    the process for tens of milliseconds, the API's slowest answers."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, require_auth: bool = True) -> FastAPI:
    """The API for ``settings``; without ``require_auth`` (``--insecure-no-auth`` on loopback)
    every request is served without a key."""
    state = Backend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.serve_in(asyncio.get_running_loop())
        freeze_heap()
        yield
        await state.aclose()

    app = FastAPI(
        title="ctq",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backend = state
    app.state.api_keys = [key.encode() for key in settings.api_key_list]
    app.state.require_auth = require_auth
    errors.install(app)
    methods.install(app)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    guarded = [Depends(require_key)] if require_auth else []
    unauthorized = UNAUTHORIZED if require_auth else {}
    app.include_router(health.open_router)
    app.include_router(health.router, dependencies=guarded, responses=unauthorized)
    # Every operation documents 422: a bad parameter is refused in the shape of a bad line.
    responses = {**INVALID, **UNPARSABLE, **unauthorized}
    for resource in (jobs, status, deadletters, campaigns, staging):
        app.include_router(resource.router, dependencies=guarded, responses=responses)
    app.include_router(metrics.router(guarded))
    dashboard.install(app)
    openapi.install(app)
    docs.install(app)
    return app
