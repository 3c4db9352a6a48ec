"""What Airflow's listeners (``plugins/engagements_listeners.py`` calls in here when they fire)
do for what only Airflow's own processes know, handed to the tasks through XCom.

- **Who marked a milestone's wait success.** Marking a task instance's state in the UI or over
  REST (``PATCH .../taskInstances/{task_id}``) writes an event ``patch_task_instance`` to
  Airflow's event log (the ``log`` table) naming the user, and fires
  ``on_task_instance_success`` in the API server with ``previous_state`` None. Tasks cannot
  read the event log (the Task SDK has no access to it), so for a ``MilestoneSensor`` the API
  server's listener reads that event and stores who marked it as the XCom
  ``marked_success_by`` of the wait task; the following ``record`` task reads it. When no
  event names the user (a group or bulk change, which the event log does not record per task),
  the XCom says so.
- **Run notes.** A task that skips or leaves something out states its rule in the XCom
  ``run_note``; when the run finishes, the listener in the scheduler writes those notes as the
  run's note (after any note a person wrote), since tasks cannot set it either.

Nothing here is imported at DAG parse time; Airflow's modules are imported when a hook runs.
"""

from __future__ import annotations

import logging
from typing import Any

from engagements.xcoms import MARKED_BY_XCOM, RUN_NOTE_XCOM

log = logging.getLogger(__name__)

MARKABLE_OPERATORS = frozenset({"MilestoneSensor"})
"""Waits whose manual success is a person recording a milestone."""
STATE_EVENTS = ("patch_task_instance", "patch_task_instance_by_map_index")


def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    """In the API server, after a person set a milestone wait's state to success."""
    if previous_state is not None or getattr(task_instance, "operator", None) not in (
        MARKABLE_OPERATORS
    ):
        return  # a task that ran to success (in a worker), or not a milestone wait
    try:
        record_who_marked(task_instance)
    except Exception:  # the state change itself stands; the record says who is unknown
        log.exception("Could not record who marked %s success", task_instance.task_id)


def record_who_marked(ti: Any) -> dict[str, Any]:
    """Read the event that set ``ti`` to success and store who did it as the wait's XCom.

    Written in the request's own session (the one holding ``ti``), committed with the state
    change's request: a second connection would wait on the request's locks.
    """
    from contextlib import nullcontext

    from airflow.utils.session import create_session
    from sqlalchemy.orm import object_session

    own = object_session(ti)
    with nullcontext(own) if own is not None else create_session() as session:
        return _record_who_marked(ti, session)


def _record_who_marked(ti: Any, session: Any) -> dict[str, Any]:
    from airflow.models.log import Log
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    event = session.scalars(
        select(Log)
        .where(
            Log.dag_id == ti.dag_id,
            Log.run_id == ti.run_id,
            Log.task_id == ti.task_id,
            Log.event.in_(STATE_EVENTS),
        )
        .order_by(Log.dttm.desc(), Log.id.desc())
        .limit(1)
    ).first()
    if event is not None and event.owner and event.owner != "anonymous":
        at = event.dttm.isoformat() if event.dttm else None
        marked = {"user": event.owner, "at": at, "event": event.event}
    else:
        how = (
            "(the request was anonymous)"
            if event is not None
            else "(a group or bulk change, or one made outside the REST API)"
        )
        marked = {
            "user": None,
            "at": None,
            "why": f"Airflow's event log has no entry naming who set this task's state {how}",
        }
    XComModel.set(
        MARKED_BY_XCOM,
        marked,
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        map_index=ti.map_index,
        serialize=False,  # as the execution API stores a task's push: JSON, read back as is
        session=session,
    )
    log.info("%s.%s marked success: %s", ti.dag_id, ti.task_id, marked)
    return marked


def write_run_notes(dag_run: Any) -> None:
    """Join the run's ``run_note`` XComs into its note.

    In the scheduler the run belongs to the session that finishes it: the note is written in
    that session (a second connection would wait on its row locks). A run object that belongs
    to no session (``dag.test`` hands over a detached one) gets its note in a session of its own.
    """
    from airflow.utils.session import create_session
    from sqlalchemy.orm import object_session

    try:
        session = object_session(dag_run)
        if session is not None:
            _write_run_notes(session, dag_run)
            return
        from airflow.models.dagrun import DagRun

        with create_session() as own:
            stored = own.get(DagRun, dag_run.id)
            if stored is not None:
                _write_run_notes(own, stored)
    except Exception:  # a note never fails a run
        log.exception("Could not write the note of %s", dag_run.run_id)


def _write_run_notes(session: Any, dag_run: Any) -> None:
    from airflow.models.xcom import XComModel

    rows = session.scalars(
        XComModel.get_many(run_id=dag_run.run_id, key=RUN_NOTE_XCOM, dag_ids=dag_run.dag_id)
    ).all()
    text = "\n".join(str(v) for v in (XComModel.deserialize_value(r) for r in rows) if v)
    existing = dag_run.note or ""
    if text and text not in existing:
        dag_run.note = f"{existing}\n\n{text}" if existing else text
