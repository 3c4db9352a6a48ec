"""Registers the engagement pipelines' Airflow listeners.

Loaded by Airflow's plugin manager in each of its processes: in the API server the listener
records who marked a milestone's wait success; in the scheduler it writes the run notes. Each
hook imports :mod:`engagements.listeners`, which does the work, only when it fires: loading
the plugins costs the dag-processor, scheduler and workers nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class EngagementListeners:
    """The hooks Airflow calls; the work is in :mod:`engagements.listeners`."""

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        from engagements import listeners

        listeners.on_task_instance_success(previous_state, task_instance)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        from engagements import listeners

        listeners.write_run_notes(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        from engagements import listeners

        listeners.write_run_notes(dag_run)


class EngagementListenersPlugin(AirflowPlugin):
    name = "engagement_listeners"
    listeners: ClassVar[list] = [EngagementListeners()]
