"""The portfolio app: pages, JSON endpoints and recording a milestone.

Mounted by Airflow's api-server at ``/engagements`` (one server, one login). Routes are plain
functions (FastAPI runs them in its thread pool): the store and the metadata DB are read
synchronously, as everywhere else in the project.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.common.db.common import SessionDep
from fastapi import APIRouter, Body, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from engagements.billing import format_money
from engagements.config import CloudProvider
from engagements.costs import COST_MONTH, parse_threshold
from engagements.dossier import Dossier, build_dossier, document_path
from engagements.hooks.store import get_store
from engagements.messages.emails import template_environment
from engagements.milestones import UnknownMilestone, get_milestone, record_done, recorded_by
from engagements.portfolio import (
    Filters,
    PortfolioRow,
    build_portfolio,
    milestone_title,
)
from engagements.settings import Settings, resolve_settings
from engagements.store import EngagementStatus, NotFound, StoreError
from engagements.web import charts
from engagements.web.access import (
    CSRF_FIELD,
    Reader,
    RecordPermissions,
    can_record,
    check_same_site,
    csrf_token,
    display_name,
    login_url,
)
from engagements.web.runs import runs_in_progress
from engagements.web.serialize import as_json, row_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

STATIC = Path(__file__).with_name("static")
RECORDED_VIA = "engagements portfolio"
NOTE_MAX = 1000
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
"""Only this server's own CSS and script; framed only by Airflow's UI on the same origin."""


@dataclass(frozen=True)
class WebSettings:
    """The settings the pages need, read (Variable, then environment) on each request."""

    cost_alert_threshold_pct: str = Settings.cost_alert_threshold_pct
    artifacts_dir: str = ""


def _settings() -> tuple[Decimal, Path]:
    web = resolve_settings(WebSettings, use_variables=True)
    try:
        threshold = parse_threshold(web.cost_alert_threshold_pct)
    except ValueError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from None
    return threshold, Settings(artifacts_dir=web.artifacts_dir).artifacts_path


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def load_portfolio(session: Session) -> list[PortfolioRow]:
    """Every engagement: one listing of each table, cost months only from the action log."""
    threshold, _ = _settings()
    store = get_store()
    return build_portfolio(
        store.list_engagements(),
        store.list_milestones(),
        store.list_actions(kind=COST_MONTH),
        runs_in_progress(session),
        today=_today(),
        threshold_pct=threshold,
    )


def load_dossier(session: Session, community_id: str) -> Dossier:
    threshold, artifacts = _settings()
    store = get_store()
    engagement = store.get_engagement(community_id)
    if engagement is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No engagement {community_id!r}")
    return build_dossier(
        engagement,
        contacts=store.list_contacts(community_id),
        milestones=store.list_milestones(community_id),
        actions=store.list_actions(community_id),
        runs=runs_in_progress(session).get(community_id, []),
        documents_folder=artifacts / community_id,
        today=_today(),
        threshold_pct=threshold,
    )


def record(community_id: str, milestone: str, user: Any, note: str | None) -> dict[str, Any]:
    """Record as the CLI does, with the Airflow user's name; refuse what may not be recorded."""
    if not can_record(user, milestone):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Forbidden: recording a milestone needs permission to edit the DAG that waits on it",
        )
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"note: at most {NOTE_MAX} characters")
    store = get_store()
    try:
        get_milestone(milestone)
        known = True
    except UnknownMilestone:
        known = False
    if not known and store.get_milestone(community_id, milestone) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No milestone {milestone!r} to record")
    try:
        recording = record_done(
            store,
            community_id,
            milestone,
            by=recorded_by(display_name(user), RECORDED_VIA),
            note=note,
        )
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return as_json(recording.record) | {
        "title": milestone_title(milestone),
        "already_recorded": recording.already,
    }


# --- pages -------------------------------------------------------------------------------

pages = APIRouter(include_in_schema=False)


def render(request: Request, user: Any, template: str, code: int = 200, **context) -> HTMLResponse:
    from airflow.api_fastapi.app import API_ROOT_PATH

    context.setdefault("notice", None)
    html = (
        template_environment()
        .get_template(f"web/{template}")
        .render(
            prefix=request.scope.get("root_path", "").rstrip("/"),
            airflow=API_ROOT_PATH,
            user_name=display_name(user) if user else "",
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(request, user) if user else "",
            today=_today(),
            money=format_money,
            **context,
        )
    )
    return HTMLResponse(html, code)


@pages.get("/")
def portfolio_page(
    request: Request,
    user: Reader,
    session: SessionDep,
    status_filter: Annotated[str, Query(alias="status")] = "",
    provider: str = "",
    q: str = "",
    recorded: str = "",
) -> HTMLResponse:
    rows = load_portfolio(session)
    shown = Filters(status_filter, provider, q).apply(rows)
    notice = None
    community, _, milestone = recorded.partition("/")
    for row in rows:
        if row.community_id == community and milestone not in {m.key for m in row.pending}:
            notice = f"{row.name}: {milestone_title(milestone)} recorded"
    return render(
        request,
        user,
        "portfolio.html.j2",
        rows=shown,
        total=len(rows),
        filters={"status": status_filter, "provider": provider, "q": q},
        statuses=[s.value for s in EngagementStatus],
        providers=[p.value for p in CloudProvider],
        may_record=RecordPermissions(user),
        notice=notice,
    )


@pages.get("/communities/{community_id}")
def community_page(
    request: Request, community_id: str, user: Reader, session: SessionDep, recorded: str = ""
) -> HTMLResponse:
    dossier = load_dossier(session, community_id)
    notice = None
    for line in dossier.milestones:
        if line.key == recorded and line.done_at:
            when = f"{line.done_at:%Y-%m-%d %H:%M} UTC"
            notice = f"{line.title}: recorded done by {line.done_by} at {when}"
    return render(
        request,
        user,
        "community.html.j2",
        d=dossier,
        row=dossier.row,
        notice=notice,
        may_record=RecordPermissions(user),
        timeline=charts.timeline(dossier.milestones, _today()),
        cost_chart=charts.costs(dossier.costs, dossier.threshold_pct, dossier.estimate_month),
        support_chart=charts.support(dossier.support),
    )


@pages.post("/communities/{community_id}/milestones/{milestone}")
def record_from_page(
    request: Request,
    community_id: str,
    milestone: str,
    user: Reader,
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "community",
) -> RedirectResponse:
    check_same_site(request, user, csrf_token)
    record(community_id, milestone, user, note)
    prefix = request.scope.get("root_path", "").rstrip("/")
    if back == "portfolio":
        target = f"{prefix}/?recorded={quote(community_id)}/{quote(milestone)}"
    else:
        target = f"{prefix}/communities/{quote(community_id)}?recorded={quote(milestone)}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@pages.get("/communities/{community_id}/documents/{name}")
def document(community_id: str, name: str, user: Reader) -> FileResponse:
    _, artifacts = _settings()
    if get_store().get_engagement(community_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No engagement {community_id!r}")
    path = document_path(artifacts / community_id, name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No document {name!r}")
    # As a download: an HTML report is never rendered on this origin.
    return FileResponse(path, filename=name, content_disposition_type="attachment")


# --- JSON ----------------------------------------------------------------------------------

api = APIRouter(prefix="/api")


@api.get("/engagements")
def list_engagements(
    user: Reader,
    session: SessionDep,
    status_filter: Annotated[str, Query(alias="status")] = "",
    provider: str = "",
    q: str = "",
) -> dict[str, Any]:
    """Every engagement, most urgent first; ``status``, ``provider`` and ``q`` filter."""
    from airflow.api_fastapi.app import API_ROOT_PATH

    rows = Filters(status_filter, provider, q).apply(load_portfolio(session))
    return {
        "today": _today().isoformat(),
        "total": len(rows),
        "engagements": [row_json(row, API_ROOT_PATH) for row in rows],
    }


@api.get("/engagements/{community_id}")
def get_engagement(community_id: str, user: Reader, session: SessionDep) -> dict[str, Any]:
    from airflow.api_fastapi.app import API_ROOT_PATH

    dossier = load_dossier(session, community_id)
    data = as_json(dossier)
    data["row"] = row_json(dossier.row, API_ROOT_PATH)
    return data


@api.post("/engagements/{community_id}/milestones/{milestone}")
def record_milestone(
    request: Request,
    community_id: str,
    milestone: str,
    user: Reader,
    note: Annotated[str | None, Body(embed=True)] = None,
) -> dict[str, Any]:
    """Record a milestone done (idempotent); the body is ``{"note": "..."}``."""
    check_same_site(request, user, request.headers.get("x-csrf-token"))
    return record(community_id, milestone, user, note)


# --- the app -------------------------------------------------------------------------------


def _wants_page(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", "").rstrip("/"))
    return not path.startswith("/api/")


async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Pages send a person without a valid login to Airflow's login; the API answers JSON."""
    if not _wants_page(request):
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    if exc.status_code == 401 or exc.detail in ("Invalid JWT token", "Token Expired"):
        return RedirectResponse(login_url(request), status.HTTP_303_SEE_OTHER)
    return render(request, None, "error.html.j2", exc.status_code, message=str(exc.detail))


async def on_store_error(request: Request, exc: StoreError) -> Response:
    message = f"The engagement store could not be read or written: {exc}"
    if not _wants_page(request):
        return JSONResponse({"detail": message}, status.HTTP_503_SERVICE_UNAVAILABLE)
    return render(
        request, None, "error.html.j2", status.HTTP_503_SERVICE_UNAVAILABLE, message=message
    )


async def security_headers(request: Request, call_next) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def create_app() -> FastAPI:
    app = FastAPI(
        title="Engagements portfolio",
        description="The engagements of the lifecycle DAGs, behind Airflow's login.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages)
    app.include_router(api)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(StoreError, on_store_error)
    app.middleware("http")(security_headers)
    return app
