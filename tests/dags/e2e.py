"""Helpers the end-to-end runs share: parse one DAG file, run the CLI, read a run's states."""

from __future__ import annotations

import os
import subprocess
import sys
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
