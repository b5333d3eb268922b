"""The dashboard at ``/``: server-rendered pages, two fragments the page polls, and the
buttons' actions, which call the same functions as ``/v1/resume`` and ``/v1/dead-letters``.
None of it is in the OpenAPI document: it is a page for people, not an API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from api import backend
from api.auth import key_matches
from api.dashboard import filters, session, view
from api.routes import deadletters, status
from api.schemas import Purged, Replayed, Resumed, Selection
from tasks.producer import Producer

HERE = Path(__file__).parent
STATIC_URL = "/dashboard/static"
# The page loads nothing but its own files, and no other site may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")
filters.install(templates.env)

Client = Annotated[redis.Redis, Depends(backend.client)]


def viewer(request: Request) -> None:
    """Dependency: a signed-in browser (session cookie) or a Bearer key."""
    if not session.signed_in(request, time.time()):
        raise session.NotSignedIn()


def same_origin(request: Request) -> None:
    """Dependency of every button: JSON from this origin only (see ``session``)."""
    session.check_same_origin(request)


pages = APIRouter(include_in_schema=False)
parts = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(viewer)])
actions = APIRouter(
    prefix="/dashboard",
    include_in_schema=False,
    dependencies=[Depends(viewer), Depends(same_origin)],
)


def render(request: Request, name: str, context: dict[str, Any], code: int = 200) -> Response:
    context = {**context, "static": STATIC_URL, "auth": request.app.state.require_auth}
    return templates.TemplateResponse(request, name, context, code, SECURITY_HEADERS)


@pages.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    if not session.signed_in(request, time.time()):
        return RedirectResponse("/login", 303)
    client = backend.client(request)
    settings = backend.settings(request)
    context = {**view.live(client, settings), **view.campaign_list(client)}
    return render(request, "dashboard.html", context)


@pages.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if session.signed_in(request, time.time()):
        return RedirectResponse("/", 303)
    return render(request, "login.html", {"refused": False})


@pages.post("/login", response_class=HTMLResponse)
def login(request: Request, key: Annotated[str, Form()] = "") -> Response:
    """Exchange a key of CTQ_API_KEYS for a session cookie (the key itself is not kept)."""
    if not key_matches(key, request.app.state.api_keys):
        return render(request, "login.html", {"refused": True}, 401)
    answer = RedirectResponse("/", 303)
    cookie = session.issue(key, time.time())
    session.set_cookie(answer, cookie, secure=request.url.scheme == "https")
    return answer


@pages.post("/logout")
def logout() -> Response:
    answer = RedirectResponse("/login", 303)
    session.clear_cookie(answer)
    return answer


@parts.get("/live", response_class=HTMLResponse)
def live_part(request: Request, client: Client) -> Response:
    return render(request, "live.html", view.live(client, backend.settings(request)))


@parts.get("/campaigns", response_class=HTMLResponse)
def campaigns_part(request: Request, client: Client) -> Response:
    return render(request, "campaigns.html", view.campaign_list(client))


@parts.get("/dead-letters/{job_id}")
def show_dead_letter(job_id: str, client: Client) -> dict[str, Any]:
    return deadletters.show_dead_letter(job_id, client)


class Lane(BaseModel):
    site: str
    lane: Literal["realtime", "bulk"]


@actions.post("/resume")
def resume(lane: Lane, client: Client) -> Resumed:
    return status.resume_lanes(client, lane.site, lane.lane)


@actions.post("/dead-letters/replay")
def replay(chosen: Selection, producer: Annotated[Producer, Depends(backend.producer)]) -> Replayed:
    return deadletters.replay_dead_letters(chosen, producer)


@actions.post("/dead-letters/purge")
def purge(chosen: Selection, client: Client) -> Purged:
    return deadletters.purge_dead_letters(chosen, client)


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "sign in at /login"}, 401)


async def _cross_site(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": f"refused: {exc}"}, 403)


def install(app: FastAPI) -> None:
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.add_exception_handler(session.NotSignedIn, _not_signed_in)
    app.add_exception_handler(session.CrossSite, _cross_site)
    for router in (pages, parts, actions):
        app.include_router(router)
