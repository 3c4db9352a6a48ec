"""Airflow's real api-server app (its factory, its SimpleAuthManager, this project's plugins)
in this process, with users of each role, and clients signed in as a browser or a script is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

USERS = {"admin": "admin", "viewer": "viewer", "editor": "user", "nobody": ""}
"""User name to SimpleAuthManager role: viewer reads everything, user may edit DAGs; nobody's
role is empty (signed in, allowed nothing)."""
PASSWORDS = {name: f"{name}-Secret-1" for name in USERS}


@pytest.fixture(scope="package")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``airflow.api_fastapi.app.create_app()`` as ``airflow api-server`` builds it."""
    from airflow.utils import db

    db.initdb()
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW__CORE__AUTH_MANAGER",
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        )
        patch.setenv(
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
            ",".join(f"{name}:{role}" for name, role in USERS.items()),
        )
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        from airflow.api_fastapi.app import create_app, purge_cached_app

        purge_cached_app()
        yield create_app()
        purge_cached_app()


@pytest.fixture
def web_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The embedded store and artifacts folder the app reads in this test."""
    from engagements.store.local import LocalStore

    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(tmp_path / "engagements.sqlite"))
    monkeypatch.setenv("ENGAGEMENTS_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.delenv("ENGAGEMENTS_COST_ALERT_THRESHOLD_PCT", raising=False)
    return LocalStore(tmp_path / "engagements.sqlite")


@pytest.fixture
def anonymous(api_app: Any):
    from fastapi.testclient import TestClient

    return TestClient(api_app)


def token_for(api_app: Any, user: str) -> str:
    """A token from Airflow's own ``POST /auth/token``, as a script gets one."""
    from fastapi.testclient import TestClient

    response = TestClient(api_app).post(
        "/auth/token", json={"username": user, "password": PASSWORDS[user]}
    )
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture
def browser(api_app: Any) -> Callable[[str], Any]:
    """A client signed in as the UI is: the ``_token`` cookie the login page sets."""
    from fastapi.testclient import TestClient

    def sign_in(user: str) -> Any:
        client = TestClient(api_app)
        client.cookies.set("_token", token_for(api_app, user))
        return client

    return sign_in


@pytest.fixture
def script(api_app: Any) -> Callable[[str], Any]:
    """A client with a bearer token, as ``curl -H "Authorization: Bearer $TOKEN"``."""
    from fastapi.testclient import TestClient

    def sign_in(user: str) -> Any:
        return TestClient(api_app, headers={"Authorization": f"Bearer {token_for(api_app, user)}"})

    return sign_in


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no record form on the page"
    return match[1]
