"""Test environment: a private AIRFLOW_HOME and this project's dags, set before Airflow loads."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="engagements-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# As `make run`: DAGs start unpaused (the renewal run starts runs only of unpaused DAGs).
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.setdefault("ENGAGEMENTS_POKE_INTERVAL", "1")
os.environ.setdefault("ENGAGEMENTS_MILESTONE_POLL_INTERVAL", "1")
os.environ["ENGAGEMENTS_STORE"] = "local"
os.environ["ENGAGEMENTS_STORE_PATH"] = str(_HOME / "engagements.sqlite")
os.environ["ENGAGEMENTS_ARTIFACTS_DIR"] = str(_HOME / "artifacts")
for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
    del os.environ[key]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

EXAMPLE = ROOT / "include" / "communities" / "openscience.yaml"


@pytest.fixture
def example_path() -> Path:
    return EXAMPLE


@pytest.fixture
def example_config():
    from engagements.config import load_config

    return load_config(EXAMPLE)


@pytest.fixture
def example_dict(example_config) -> dict:
    return example_config.to_dict()


@pytest.fixture
def store(tmp_path, example_config):
    """The example community registered (Onboarding) in a fresh embedded store."""
    from engagements.onboarding import register
    from engagements.store.local import LocalStore

    store = LocalStore(tmp_path / "store.sqlite")
    register(store, example_config, run_id="r", run_state=lambda _: None)
    return store


@pytest.fixture
def run(tmp_path):
    """``engagements <args>`` in its own process, on an embedded store of this test."""
    import subprocess

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "ENGAGEMENTS_STORE": "local",
        "ENGAGEMENTS_STORE_PATH": str(tmp_path / "cli-store.sqlite"),
    }

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engagements.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    return _run


@pytest.fixture
def form_requests(monkeypatch) -> list[dict]:
    """Every form a task writes for a person to answer (the provider's call that stores it
    through the task's supervisor), so that a form asking again can be seen in-process."""
    requests: list[dict] = []
    monkeypatch.setattr(
        "airflow.providers.standard.operators.hitl.upsert_hitl_detail",
        lambda **request: requests.append(request),
    )
    return requests


def waiting(context: dict) -> dict:
    """A task's context as a form needs it to wait for an answer."""
    import uuid
    from types import SimpleNamespace

    return {**context, "task_instance": SimpleNamespace(id=uuid.uuid4())}


@pytest.fixture
def local_infra(tmp_path, monkeypatch):
    """The embedded infrastructure repository of this test: no GitHub connection or repo."""
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    monkeypatch.delenv("ENGAGEMENTS_INFRA_REPO", raising=False)
    path = tmp_path / "infrastructure"
    monkeypatch.setenv("ENGAGEMENTS_INFRA_REPO_PATH", str(path))
    return path
