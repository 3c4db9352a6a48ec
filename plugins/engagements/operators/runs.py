"""Start a run of another DAG (or of the same one) from a task.

The standard provider's ``TriggerDagRunOperator`` does this too, but its module imports the
ORM models and SQLAlchemy for Airflow 2 support, which more than doubles the parse cost of
the DAG file that uses it. In Airflow 3 a task never starts a run itself: it raises
:class:`~airflow.sdk.exceptions.DagRunTriggerException` and the task runner asks the API
server to create the run, skipping the task when the run id already exists. This operator
raises exactly that, importing nothing heavy before ``execute``.
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
    """The "Started run" button on the task: a link to the run it started.

    The URL is stored in XCom when the task runs; the API server reads it from there.
    """

    name = "Started run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task stored when it started the run (empty before that)."""
        from airflow.sdk import XCom

        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class StartDagRunOperator(BaseOperator):
    """Start a run of ``trigger_dag_id`` with a fixed run id; skip if that run already exists.

    A fixed run id (for example ``renewal__<community>__<end>``) is what makes the start
    idempotent: a re-run of this task, or of the whole scan, never starts a second run.
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
        from airflow.sdk.exceptions import DagRunTriggerException
        from airflow.utils.helpers import build_airflow_dagrun_url

        if not self.trigger_run_id:
            raise ValueError(
                f"{self.task_id}: the run id to start is empty; the upstream task must "
                "provide one so the start stays idempotent."
            )
        now = dt.datetime.now(dt.UTC)
        context["ti"].xcom_push(
            key=StartedRunLink().xcom_key,
            value=build_airflow_dagrun_url(dag_id=self.trigger_dag_id, run_id=self.trigger_run_id),
        )
        self.log.info("Starting %s run %s", self.trigger_dag_id, self.trigger_run_id)
        raise DagRunTriggerException(
            trigger_dag_id=self.trigger_dag_id,
            dag_run_id=self.trigger_run_id,
            conf=dict(self.conf or {}),
            logical_date=now,
            run_after=now,
            reset_dag_run=False,
            skip_when_already_exists=True,
            wait_for_completion=False,
            allowed_states=["success"],
            failed_states=["failed"],
            poke_interval=60,
            deferrable=False,
        )
