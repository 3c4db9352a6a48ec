"""The shared interface: object ids as git makes them, and the backend chosen by
configuration."""

from __future__ import annotations

import subprocess

import pytest

from engagements.hooks.infra_repo import (
    DeploymentSettings,
    InfraRepositoryError,
    get_infra_repository,
    git_blob_sha,
    load_deployment_settings,
)
from engagements.hooks.infra_repo.github import GitHubInfraRepository
from engagements.hooks.infra_repo.local import LocalGitInfraRepository


def test_git_blob_sha_matches_git(tmp_path):
    path = tmp_path / "f"
    path.write_text("name: openscience\n")
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_blob_sha("name: openscience\n") == expected


def test_local_repository_without_a_github_connection(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO_PATH", str(tmp_path / "infra"))
    repo = get_infra_repository(load_deployment_settings())
    assert isinstance(repo, LocalGitInfraRepository)
    assert repo.path == tmp_path / "infra"


def test_default_local_path_is_under_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    repo = get_infra_repository(DeploymentSettings())
    assert repo.path == tmp_path / "infrastructure"


def test_github_when_the_repository_is_named_and_the_connection_exists(fake_github, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO", "2i2c-org/infrastructure")
    repo = get_infra_repository(load_deployment_settings())
    assert isinstance(repo, GitHubInfraRepository)
    assert repo.full_name == "2i2c-org/infrastructure"


def test_a_named_repository_without_its_connection_is_an_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    with pytest.raises(InfraRepositoryError, match="'github_default' is not defined"):
        get_infra_repository(DeploymentSettings(infra_repo="2i2c-org/infrastructure"))


def test_connection_without_a_named_repository_stays_local(fake_github, tmp_path, caplog):
    repo = get_infra_repository(DeploymentSettings(infra_repo_path=str(tmp_path)))
    assert isinstance(repo, LocalGitInfraRepository)
    assert "engagements_infra_repo is not set" in caplog.text
