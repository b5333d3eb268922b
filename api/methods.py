"""405 answers that list every method of the resource in ``Allow``.

Starlette answers 405 from the first route whose path matches, so ``OPTIONS
/v1/dead-letters/replay`` would say ``Allow: GET`` (the route ``/v1/dead-letters/{job_id}``).
Here the most specific path that matches names the methods: the fewest parameters wins.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route


def allowed_methods(request: Request) -> list[str]:
    by_path: dict[str, set[str]] = {}
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match != Match.NONE:
                by_path.setdefault(route.path, set()).update(route.methods)
    if not by_path:
        return []
    specific = min(by_path, key=lambda path: path.count("{"))
    return sorted(by_path[specific])


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    allow = ", ".join(allowed_methods(request))
    return JSONResponse({"detail": "Method Not Allowed"}, 405, headers={"Allow": allow})


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _method_not_allowed)
