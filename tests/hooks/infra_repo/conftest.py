"""A fake GitHub holding the infrastructure repository, for the GitHub backend's tests."""

from __future__ import annotations

import pytest

from tests.hooks.test_github import FakeGitHub, github_connection


@pytest.fixture
def fake_github(monkeypatch):
    with FakeGitHub() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", github_connection(fake.url))
        yield fake


@pytest.fixture
def infra(fake_github):
    return fake_github.add_repo("2i2c-org/infrastructure", {"README.md": "# infrastructure\n"})
