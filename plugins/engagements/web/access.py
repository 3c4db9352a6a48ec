"""Who may see and record: Airflow's own login and auth manager, and cross-site protection.

Airflow does not protect a plugin's FastAPI app by itself. Every route here depends on
Airflow's ``get_user`` (the UI's ``_token`` cookie, or a bearer token from ``/auth/token``),
and asks the configured auth manager (Simple, FAB, Keycloak, ...) whether the user may read the
lifecycle DAGs (to look) or edit the DAG that waits on a milestone (to record it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, Request, status

from engagements.portfolio import LIFECYCLE_DAG_IDS, waiting_dag

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

CSRF_FIELD = "csrf_token"


def allowed(user: BaseUser, method: ResourceMethod, dag_ids: Iterable[str]) -> bool:
    """Whether the auth manager lets ``user`` do ``method`` on every one of these DAGs."""
    from airflow.models.dag import DagModel

    dag_ids = list(dag_ids)
    teams = DagModel.get_dag_id_to_team_name_mapping(dag_ids)
    return get_auth_manager().batch_is_authorized_dag(
        [
            {"method": method, "details": DagDetails(id=dag_id, team_name=teams.get(dag_id))}
            for dag_id in dag_ids
        ],
        user=user,
    )


def recording_dags(milestone: str) -> tuple[str, ...]:
    """The DAG that waits on the milestone; one no DAG knows needs all of them."""
    dag_id = waiting_dag(milestone)
    return (dag_id,) if dag_id else LIFECYCLE_DAG_IDS


def can_record(user: BaseUser, milestone: str) -> bool:
    return allowed(user, "PUT", recording_dags(milestone))


class RecordPermissions:
    """``can_record`` per milestone for one request, asking once per DAG."""

    def __init__(self, user: BaseUser) -> None:
        self.user = user
        self._by_dags: dict[tuple[str, ...], bool] = {}

    def __call__(self, milestone: str) -> bool:
        dags = recording_dags(milestone)
        if dags not in self._by_dags:
            self._by_dags[dags] = allowed(self.user, "PUT", dags)
        return self._by_dags[dags]


def lifecycle_reader(user: Annotated[BaseUser, Depends(get_user)]) -> BaseUser:
    """The signed-in user, who may read every lifecycle DAG; else 401 (no login) or 403."""
    if not allowed(user, "GET", LIFECYCLE_DAG_IDS):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Forbidden: the engagements portfolio needs read access to the lifecycle DAGs",
        )
    return user


Reader = Annotated[BaseUser, Depends(lifecycle_reader)]


def display_name(user: BaseUser) -> str:
    return user.get_name() or user.get_id()


def _session_token(request: Request) -> str:
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


def csrf_token(request: Request, user: BaseUser) -> str:
    """A form token bound to the user and their login session, signed with ``[api] secret_key``.

    A page on another site can make the browser post a form here with the session cookie, but
    cannot read this token from our page, so its post is refused.
    """
    from airflow.configuration import conf

    secret = conf.get("api", "secret_key").encode()
    message = "\0".join(("csrf", user.get_id(), _session_token(request))).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _by_bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def check_same_site(request: Request, user: BaseUser, token: str | None) -> None:
    """Refuse a POST that another site made the browser send (403).

    Browsers say where a request comes from (``Sec-Fetch-Site``, ``Origin``): another site is
    refused outright. A request signed in by the session cookie must also carry the form's
    token; one with a bearer token in its header cannot have been made by another site's page.
    """
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-site request refused")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Cross-site request refused")
    if _by_bearer(request):
        return
    if not token or not hmac.compare_digest(token, csrf_token(request, user)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "The form is out of date or did not come from this page: reload the page and try again",
        )


def login_url(request: Request) -> str:
    return get_auth_manager().get_url_login(next_url=str(request.url))
