"""Start a run of another DAG from a task, through the standard provider's public operator.

The run is started by ``TriggerDagRunOperator`` (``airflow.providers.standard``), Airflow's
public interface for it, built and executed inside ``execute``: its module imports Airflow's
ORM models and SQLAlchemy (about 0.5 s), so importing it where the DAG file is parsed would
take that file past the 0.3 s parse target. Built when the task runs, it costs the DAG file
nothing. Airflow logs one warning that the inner ``execute`` was called outside the task
runner (nested operators are allowed by default); the run is started as by the operator
itself: the task runner asks the API server for it and skips the task when it already exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import TaskInstanceKey


class StartedRunLink(BaseOperatorLink):
    """The "Started run" button on the task: a link to the run it starts.

    Built by the task runner when the task ends, from the rendered run id, and kept in XCom,
    where the API server reads it.
    """

    name = "Started run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.utils.helpers import build_airflow_dagrun_url

        return build_airflow_dagrun_url(
            dag_id=operator.trigger_dag_id, run_id=operator.trigger_run_id
        )


class StartDagRunOperator(BaseOperator):
    """Start a run of ``trigger_dag_id`` with a fixed run id; skip if that run already exists.

    A fixed run id (for example ``renewal__<community>__<end>``) is what makes the start
    idempotent: a re-run of this task, or of the whole scan, never starts a second run (the
    task skips; the task runner also skips it if the run appears meanwhile, as the inner
    ``TriggerDagRunOperator`` asks with ``skip_when_already_exists``). A paused DAG
    fails the task: its run would wait in the queue where nobody looks.
    """

    template_fields: Sequence[str] = ("trigger_dag_id", "trigger_run_id", "conf")
    template_fields_renderers: ClassVar[dict[str, str]] = {"conf": "json"}
    operator_extra_links = (StartedRunLink(),)
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str,
        conf: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf

    def execute(self, context: Context) -> None:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        if not self.trigger_run_id:
            raise ValueError(
                f"{self.task_id}: the run id to start is empty; the upstream task must "
                "provide one so the start stays idempotent."
            )
        ti = context["ti"]
        if ti.get_dr_count(dag_id=self.trigger_dag_id, run_ids=[self.trigger_run_id]):
            raise AirflowSkipException(
                f"{self.trigger_dag_id} run {self.trigger_run_id} already exists"
            )
        if ti.get_dag(self.trigger_dag_id).is_paused:
            raise AirflowFailException(
                f"{self.trigger_dag_id} is paused, so its run {self.trigger_run_id} would wait "
                "unseen: unpause it in the UI, then clear this task to start the run."
            )
        now = dt.datetime.now(dt.UTC)
        self.log.info("Starting %s run %s", self.trigger_dag_id, self.trigger_run_id)
        TriggerDagRunOperator(
            task_id=self.task_id,
            trigger_dag_id=self.trigger_dag_id,
            trigger_run_id=self.trigger_run_id,
            conf=dict(self.conf or {}),
            logical_date=now,
            run_after=now,
            skip_when_already_exists=True,
            openlineage_inject_parent_info=False,  # the conf is exactly what was asked for
        ).execute(context)
