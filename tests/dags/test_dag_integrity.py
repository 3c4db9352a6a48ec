"""DagBag integrity and house policy for every DAG file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DAGS = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_no_import_errors(bag):
    assert bag.import_errors == {}
    assert bag.dags


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_each_file_defines_a_documented_dag(bag, dag_file):
    dags = [d for d in bag.dags.values() if Path(d.fileloc).name == dag_file]
    assert dags, f"{dag_file} defines no DAG"
    for dag in dags:
        assert dag.doc_md, dag.dag_id
        assert len(dag.doc_md) > 200, dag.dag_id
        assert dag.tags, dag.dag_id
        assert "engagement-lifecycle" in dag.tags
        assert dag.catchup is False
        for task in dag.tasks:
            assert task.owner == "product-and-services", task.task_id
            assert task.retries >= 1, task.task_id


def test_milestone_waits_defer_and_other_sensors_reschedule(bag):
    """No sensor holds a worker slot while it waits."""
    from airflow.sdk import BaseSensorOperator

    from engagements.sensors.milestone import MilestoneSensor

    waits = 0
    for dag in bag.dags.values():
        for task in dag.tasks:
            if isinstance(task, MilestoneSensor):
                assert task.deferrable, task.task_id
                waits += 1
            if isinstance(task, BaseSensorOperator):
                assert task.mode == "reschedule", task.task_id
    assert waits >= 9  # seven onboarding milestones, the check-in, the cost entry


def test_a_bad_interval_setting_does_not_break_parsing():
    """Settings are read when a task runs (the sensor then names a bad one), never on import:
    parsed in a fresh process, as the dag-processor does."""
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag({str(DAGS)!r})\n"
        "print(bag.import_errors or len(bag.dags))\n"
    )
    env = {
        **os.environ,
        "ENGAGEMENTS_POKE_INTERVAL": "two hours",
        "ENGAGEMENTS_MILESTONE_POLL_INTERVAL": "soon",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) >= 5, result.stdout[-2000:]


@pytest.mark.parametrize(
    "dag_id",
    [
        "engagement_quarterly_checkin",
        "engagement_cost_watch",
        "engagement_platform_upkeep",
    ],
)
def test_one_community_runs_take_only_a_valid_community_id(bag, dag_id):
    from airflow.sdk.exceptions import ParamValidationError

    param = bag.dags[dag_id].params.get_param("community_id")
    assert param.resolve(None) is None  # empty: the scheduled run over every community
    assert param.resolve("openscience") == "openscience"
    with pytest.raises(ParamValidationError):
        param.resolve("Open Science!")


def test_renewal_scan_starts_decision_runs_and_each_decision_run_needs_its_community(bag):
    from airflow.sdk.exceptions import ParamValidationError

    scan = bag.dags["engagement_renewal_scan"]
    assert scan.schedule == "@daily"
    assert not scan.params
    (start,) = [t for t in scan.tasks if t.task_id == "start_decision_runs"]
    assert start.partial_kwargs["trigger_dag_id"] == "engagement_renewal"
    decision = bag.dags["engagement_renewal"]
    assert decision.schedule is None
    param = decision.params.get_param("community_id")
    assert param.resolve("openscience") == "openscience"
    for bad in (None, "Open Science!"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_onboarding_has_the_deployment_boundary(bag):
    dag = bag.dags["engagement_onboarding"]
    assert "deploy_infrastructure" in dag.task_group.children


def test_parsing_touches_no_network_store_or_database(tmp_path):
    """Parse the DAGs in a process where sockets fail and the store path does not exist."""
    store = tmp_path / "never" / "store.sqlite"
    script = textwrap.dedent(
        f"""
        import socket, sys
        def refuse(*a, **k):
            raise RuntimeError("network access at parse time")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag({str(DAGS)!r})
        assert not bag.import_errors, bag.import_errors
        print(len(bag.dags))
        """
    )
    env = {
        **os.environ,
        "ENGAGEMENTS_STORE_PATH": str(store),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) >= 1
    assert not store.parent.exists()


def test_plugin_manager_does_not_scan_the_package():
    """Scanned file by file, hooks/github.py would become sys.modules["github"]."""
    from airflow._shared.plugins_manager.plugins_manager import (
        _load_plugins_from_plugin_directory,
    )

    before = set(sys.modules)
    _plugins, errors = _load_plugins_from_plugin_directory(
        os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"]
    )
    assert errors == {}
    assert not {"github", "config", "settings", "cli"} & (set(sys.modules) - before)
