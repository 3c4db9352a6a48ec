"""Lifecycle runs in progress, from Airflow's metadata DB (the api-server has it)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import and_, select

from engagements.portfolio import LIFECYCLE_DAG_IDS, RunInProgress

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def runs_in_progress(
    session: Session, dag_ids: Sequence[str] = LIFECYCLE_DAG_IDS
) -> dict[str, list[RunInProgress]]:
    """Queued and running runs of the lifecycle DAGs, by community: two queries in all.

    A run is a community's when its conf names it (onboarding, decommission, a renewal decision,
    a check-in triggered for one community), or when one of its mapped tasks is for it (the
    scheduled check-in and cost watch map a task group over communities, each task's
    ``map_index_template`` rendering the community id).
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.state import DagRunState, TaskInstanceState

    active = (DagRunState.QUEUED, DagRunState.RUNNING)
    runs = session.execute(
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.start_date, DagRun.conf)
        .where(DagRun.dag_id.in_(dag_ids), DagRun.state.in_(active))
        .order_by(DagRun.start_date.desc())
    ).all()
    if not runs:
        return {}
    waiting_states = (
        TaskInstanceState.UP_FOR_RESCHEDULE,
        TaskInstanceState.DEFERRED,
        TaskInstanceState.AWAITING_INPUT,
    )
    unfinished = (
        *waiting_states,
        TaskInstanceState.SCHEDULED,
        TaskInstanceState.QUEUED,
        TaskInstanceState.RUNNING,
        TaskInstanceState.UP_FOR_RETRY,
        TaskInstanceState.RESTARTING,
    )
    # The column itself: the model's attribute falls back to the map index ("0", "1", ...).
    rendered = TI.__table__.c.rendered_map_index
    tasks = session.execute(
        select(TI.dag_id, TI.run_id, TI.task_id, rendered, TI.state)
        .join(DagRun, and_(DagRun.dag_id == TI.dag_id, DagRun.run_id == TI.run_id))
        .where(DagRun.dag_id.in_(dag_ids), DagRun.state.in_(active), TI.state.in_(unfinished))
        .order_by(TI.task_id, TI.map_index)
    ).all()
    # (dag_id, run_id) -> community (None: the run's own) -> waiting task ids
    waiting: dict[tuple[str, str], dict[str | None, list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for task in tasks:
        per_community = waiting[(task.dag_id, task.run_id)]
        names = per_community[task.rendered_map_index or None]
        if task.state in waiting_states and task.task_id not in names:
            names.append(task.task_id)
    out: dict[str, list[RunInProgress]] = defaultdict(list)
    for run in runs:
        conf = run.conf if isinstance(run.conf, dict) else {}
        own = conf.get("community_id") if isinstance(conf.get("community_id"), str) else None
        per_community = waiting.get((run.dag_id, run.run_id), {})
        communities = {own} if own else {c for c in per_community if c}
        for community in communities:
            names = [*per_community.get(None, []), *per_community.get(community, [])]
            out[community].append(
                RunInProgress(
                    run.dag_id,
                    run.run_id,
                    str(run.state),
                    run.start_date,
                    tuple(dict.fromkeys(names)),
                )
            )
    return dict(out)
