"""Starting another run: what the task hands to Airflow's task runner, and what it refuses."""

from __future__ import annotations

import subprocess
import sys
import traceback
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSkipException,
    DagRunTriggerException,
)

from engagements.operators.runs import StartDagRunOperator, StartedRunLink


class RecordingTI:
    """The part of the task instance the operator uses: the target DAG's state."""

    def __init__(self, paused: bool = False, existing: tuple[str, ...] = ()) -> None:
        self.paused = paused
        self.existing = existing
        self.asked: list[str] = []

    def get_dr_count(self, dag_id: str, run_ids: list[str]) -> int:
        return len(set(run_ids) & set(self.existing))

    def get_dag(self, dag_id: str) -> SimpleNamespace:
        self.asked.append(dag_id)
        return SimpleNamespace(dag_id=dag_id, is_paused=self.paused)


def start(run_id: str, conf: dict | None = None) -> tuple[DagRunTriggerException, RecordingTI]:
    ti = RecordingTI()
    op = StartDagRunOperator(
        task_id="trigger_decommission",
        trigger_dag_id="engagement_decommission",
        trigger_run_id=run_id,
        conf=conf,
    )
    with pytest.raises(DagRunTriggerException) as raised:
        op.execute({"ti": ti})
    return raised.value, ti


def test_asks_for_the_run_with_its_fixed_id_and_conf():
    conf = {"community_id": "endsci", "end_date": "2027-01-31"}
    request, _ = start("decommission__endsci__2027-01-31", conf)
    assert request.trigger_dag_id == "engagement_decommission"
    assert request.dag_run_id == "decommission__endsci__2027-01-31"
    assert request.conf == conf
    assert request.logical_date == request.run_after


def test_a_run_that_already_exists_is_skipped_never_reset_or_waited_for():
    request, _ = start("decommission__endsci__2027-01-31")
    assert request.skip_when_already_exists is True
    assert request.reset_dag_run is False
    assert request.wait_for_completion is False
    assert request.conf == {}


def test_links_to_the_started_run():
    op = StartDagRunOperator(
        task_id="trigger_decommission",
        trigger_dag_id="engagement_decommission",
        trigger_run_id="decommission__endsci__2027-01-31",
    )
    url = StartedRunLink().get_link(op, ti_key=None)
    assert url.endswith("/dags/engagement_decommission/runs/decommission__endsci__2027-01-31")


def test_a_paused_dag_fails_the_task_instead_of_queueing_a_run_nobody_sees():
    op = StartDagRunOperator(
        task_id="trigger_decommission",
        trigger_dag_id="engagement_decommission",
        trigger_run_id="decommission__endsci__2027-01-31",
    )
    ti = RecordingTI(paused=True)
    with pytest.raises(AirflowFailException, match="engagement_decommission is paused"):
        op.execute({"ti": ti})
    assert ti.asked == ["engagement_decommission"]


def test_an_empty_run_id_is_refused_before_anything_starts():
    op = StartDagRunOperator(
        task_id="trigger_decommission", trigger_dag_id="engagement_decommission", trigger_run_id=""
    )
    ti = RecordingTI()
    with pytest.raises(ValueError, match="run id to start is empty"):
        op.execute({"ti": ti})
    assert ti.asked == []


def test_a_run_that_exists_is_skipped_before_anything_else_even_on_a_paused_dag():
    op = StartDagRunOperator(
        task_id="trigger_decommission",
        trigger_dag_id="engagement_decommission",
        trigger_run_id="decommission__endsci__2027-01-31",
    )
    ti = RecordingTI(paused=True, existing=("decommission__endsci__2027-01-31",))
    with pytest.raises(AirflowSkipException, match="already exists"):
        op.execute({"ti": ti})
    assert ti.asked == []


def test_the_run_is_asked_for_by_the_standard_providers_public_operator():
    request, _ = start("decommission__endsci__2027-01-31")
    raised_in = {frame.filename for frame in traceback.extract_tb(request.__traceback__)}
    assert any(
        name.endswith("airflow/providers/standard/operators/trigger_dagrun.py")
        for name in raised_in
    ), raised_in


def test_the_public_operator_is_imported_when_the_task_runs_not_at_parse_time():
    script = (
        "import sys, engagements.operators.runs\n"
        "print('airflow.providers.standard.operators.trigger_dagrun' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
