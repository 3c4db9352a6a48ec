"""Helpers the end-to-end runs share: parse one DAG file, run the CLI, read a run's states,
act on waiting tasks as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def parse_dag(dag_id: str) -> Any:
    """The DAG of ``<dags folder>/<dag_id>.py``, parsed as the dag-processor would.

    Parse again for each in-process run when a module runs one DAG several times: runs of one
    DAG object carry a run's params into the next run's tasks, which workers never do.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def cli(*args: str) -> subprocess.CompletedProcess:
    """``engagements <args>`` in a separate process, as an engineer runs it."""
    return subprocess.run(
        [sys.executable, "-m", "engagements.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def states(run: Any) -> dict[str, str | None]:
    """Task id to state for an unmapped run."""
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


class WaitWatcher(threading.Thread):
    """Acts as a person would while ``dag.test()`` runs: every half second it finds the tasks
    of ``dag_id`` that wait (a sensor up for reschedule, or a task deferred to its trigger,
    which ``dag.test()`` runs inline with the task instance queued) and hands their ids to
    :meth:`on_waiting`, until ``stop`` is set (by the test, or by ``on_waiting`` when its work
    is done)."""

    def __init__(self, dag_id: str) -> None:
        super().__init__(daemon=True)
        self.dag_id = dag_id
        self.stop = threading.Event()

    def run(self) -> None:
        from airflow import settings
        from airflow.models.taskinstance import TaskInstance

        deferred = TaskInstance.trigger_id.is_not(None) & TaskInstance.state.in_(
            ("deferred", "queued")
        )
        while not self.stop.is_set():
            with settings.Session() as session:
                rows = session.query(TaskInstance.task_id).filter(
                    TaskInstance.dag_id == self.dag_id,
                    (TaskInstance.state == "up_for_reschedule") | deferred,
                )
                waiting = {task_id for (task_id,) in rows}
            if waiting:
                self.on_waiting(waiting)
            self.stop.wait(0.5)

    def on_waiting(self, task_ids: set[str]) -> None:
        raise NotImplementedError


@contextmanager
def own_environment(home: Path, dag_id: str, values: dict[str, str]) -> Iterator[Path]:
    """A module's own store, artifacts and ``values``, and a dags folder holding only its DAG
    file: dag.test() parses and serializes every DAG of its folder, so a DAG another engineer
    is changing cannot break this run. Everything is restored afterwards."""
    import pytest
    from airflow import settings

    dags = home / "dags"
    dags.mkdir()
    (dags / f"{dag_id}.py").symlink_to(
        Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "ENGAGEMENTS_STORE_PATH": str(home / "engagements.sqlite"),
            "ENGAGEMENTS_ARTIFACTS_DIR": str(home / "artifacts"),
            **values,
        }.items():
            patch.setenv(name, value)
        patch.setattr(settings, "DAGS_FOLDER", str(dags))  # what the dags-folder bundle reads
        yield home


class AirflowApi:
    """Airflow's own REST API in-process (its FastAPI app, as the API server runs it), with a
    token for ``username``: what a person does in the UI goes through these same routes,
    their event logging and their listeners."""

    def __init__(self, username: str) -> None:
        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        self.client = TestClient(create_app(apps="core"))
        user = SimpleAuthManagerUser(username=username, role="admin")
        self.headers = {"Authorization": f"Bearer {get_auth_manager().generate_jwt(user)}"}

    def mark_success(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """The UI's "Mark as success" on one task instance."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        answer = self.client.patch(path, json={"new_state": "success"}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()
