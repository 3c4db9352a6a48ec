"""The hub's users API at the HTTP boundary: pagination, stopped servers, refusals."""

from __future__ import annotations

import json

import pytest

from engagements.hooks.jupyterhub import HubUser, JupyterHubError, JupyterHubHook
from tests.hooks.fake_jupyterhub import PAGINATION_MEDIA_TYPE, FakeJupyterHub

CONN = "jupyterhub_openscience_prod"


@pytest.fixture
def hub(monkeypatch):
    with FakeJupyterHub() as fake:
        conn = {"conn_type": "http", "host": fake.url, "password": fake.token}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        yield fake


def test_every_page_is_read_and_stopped_servers_count(hub):
    for i in range(450):
        hub.add_user(f"user{i:03d}", used=i % 3 != 0, running=i == 1)
    users = JupyterHubHook(CONN).users()
    assert len(users) == 450
    assert users[0] == HubUser("user000", "2027-10-01T10:00:00.000000Z", server_used=False)
    assert users[1].server_used  # running
    assert users[2].server_used  # stopped
    assert sum(u.server_used for u in users) == 300
    pages = hub.requests
    assert [r["query"]["offset"] for r in pages] == ["0", "200", "400"]
    assert all(r["accept"] == [PAGINATION_MEDIA_TYPE] for r in pages)
    assert all(r["query"]["include_stopped_servers"] == "1" for r in pages)


def test_a_hub_that_caps_pages_lower_is_followed_to_the_end(monkeypatch):
    with FakeJupyterHub(max_limit=20) as fake:
        monkeypatch.setenv(
            "AIRFLOW_CONN_HUB", json.dumps({"conn_type": "http", "password": fake.token})
        )
        for i in range(45):
            fake.add_user(f"u{i}")
        users = JupyterHubHook("hub", url=fake.url).users()
    assert [u.name for u in users] == [f"u{i}" for i in range(45)]
    assert [r["query"]["limit"] for r in fake.requests] == ["200", "20", "20"]


def test_a_wrong_token_or_a_failing_hub_is_an_error_naming_the_hub(hub, monkeypatch):
    conn = {"conn_type": "http", "host": hub.url, "password": "not-the-token"}
    monkeypatch.setenv("AIRFLOW_CONN_WRONG", json.dumps(conn))
    with pytest.raises(JupyterHubError, match=r"/hub/api/users: HTTP 403: Forbidden") as err:
        JupyterHubHook("wrong").users()
    assert "not-the-token" not in str(err.value)
    hub.fail_with = (500, "database is locked")
    with pytest.raises(JupyterHubError, match="HTTP 500: database is locked"):
        JupyterHubHook(CONN).users()


def test_a_token_that_cannot_read_servers_is_refused(hub):
    hub.add_user("ada")
    model = hub.model

    def without_servers(user, include_stopped):
        return {k: v for k, v in model(user, include_stopped).items() if k != "servers"}

    hub.model = without_servers
    with pytest.raises(JupyterHubError, match="needs the read:servers scope"):
        JupyterHubHook(CONN).users()


def test_a_connection_without_a_token_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_NOTOKEN", json.dumps({"conn_type": "http", "host": "h"}))
    with pytest.raises(JupyterHubError, match="needs the hub's API token as its password"):
        JupyterHubHook("notoken").users()
