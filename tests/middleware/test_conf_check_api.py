"""The conf and answer checks on the real API server (``airflow api-server`` with this
project's plugins folder, SQLite, SimpleAuthManager) over HTTP, as a user's REST client or the
UI sends them: a trigger whose conf breaks a rule is refused with 400 and creates no run; a
form answer that breaks a rule is refused with 400 and leaves the form waiting.

No scheduler runs: the form of the run's ``technical_decisions`` task is written into the
metadata DB as the task's supervisor writes it when the task asks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engagements.params import flatten_config
from tests.topology.harness import clean_environ, free_ports

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "conf-check-test"
DAG = "engagement_onboarding"

WRITE_FORM = """
import json, sys
from airflow.models.hitl import HITLDetail
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from engagements.config import load_config
from engagements.operators.hitl import current_values, decision_params

config = load_config(sys.argv[2])
params = decision_params(current_values(config.to_dict()))
with create_session() as session:
    ti = session.query(TaskInstance).filter_by(
        dag_id="engagement_onboarding", run_id=sys.argv[1], task_id="technical_decisions"
    ).one()
    session.add(HITLDetail(
        ti_id=ti.id, options=["OK"], subject="Technical decisions", body=None,
        defaults=["OK"], multiple=False, params={k: p.serialize() for k, p in params.items()},
        assignees=[],
    ))
"""


def airflow_env(home: Path, port: int) -> dict[str, str]:
    return {
        **clean_environ(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "ENGAGEMENTS_STORE": "local",
        "ENGAGEMENTS_STORE_PATH": str(home / "engagements.sqlite"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "plugins"),
    }


def airflow(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    home = tmp_path_factory.mktemp("api-server")
    (port,) = free_ports(1)
    env = airflow_env(home, port)
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    airflow(env, "db", "migrate")
    airflow(env, "dags", "reserialize")
    log = (home / "api-server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "airflow"),
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/version", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API server did not answer"
            time.sleep(1)
        token = httpx.post(
            f"{url}/auth/token", json={"username": "admin", "password": PASSWORD}, timeout=30
        ).json()["access_token"]
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            yield client, env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def runs(client: httpx.Client) -> list[str]:
    answer = client.get(f"/api/v2/dags/{DAG}/dagRuns")
    assert answer.status_code == 200, answer.text
    return [r["dag_run_id"] for r in answer.json()["dag_runs"]]


def test_triggers_are_checked_by_the_api_server(api, example_dict):
    client, _ = api
    conf = flatten_config(example_dict)
    refused = [
        (conf | {"cloud.regoin": "us-west-2"}, "cloud.regoin: unknown key"),
        (conf | {"contract.end": "2026-01-01"}, "contract: end (2026-01-01) must be after start"),
        (conf | {"cloud.provider": "gcp"}, "cloud: region 'us-west-2' is not a gcp region"),
        (conf | {"tier": "platinum"}, "Invalid input for param tier"),  # Airflow's own answer
    ]
    for bad, problem in refused:
        answer = client.post(
            f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": bad}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"].startswith(problem), answer.text
    assert runs(client) == []

    accepted = client.post(f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf})
    assert accepted.status_code == 200, accepted.text
    assert runs(client) == [accepted.json()["dag_run_id"]]


def test_form_answers_are_checked_by_the_api_server(api, example_dict, example_path):
    client, env = api
    conf = flatten_config(example_dict)
    run_id = client.post(
        f"/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None, "conf": conf}
    ).json()["dag_run_id"]
    written = subprocess.run(
        [sys.executable, "-c", WRITE_FORM, run_id, str(example_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr[-2000:]
    path = f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/technical_decisions/-1/hitlDetails"
    good = {key: conf[key] for key in conf if key.startswith(("cloud.", "hubs."))}
    good |= {k: conf[k] for k in ("github_org", "branding.logo_url", "website")}
    good["branding.funded_by"] = example_dict["branding"]["funded_by"]
    good.pop("cloud.access_managed_by_2i2c")

    partial = {k: v for k, v in good.items() if k != "cloud.gpu"}
    for answer, problem in (
        (partial, "cloud.gpu: missing: answer every field of the form"),
        (good | {"cloud.region": "europe-west1"}, "cloud: region 'europe-west1' is not a aws"),
    ):
        refused = client.patch(path, json={"chosen_options": ["OK"], "params_input": answer})
        assert refused.status_code == 400, refused.text
        assert refused.json()["problems"][0].startswith(problem)
    assert client.get(path).json()["response_received"] is False

    accepted = client.patch(path, json={"chosen_options": ["OK"], "params_input": good})
    assert accepted.status_code == 200, accepted.text
    assert client.get(path).json()["params_input"]["cloud.region"] == "us-west-2"
