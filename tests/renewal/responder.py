"""Answering human-in-the-loop forms during ``dag.test()``, as a person in the UI would.

``dag.test()`` keeps a run alive while a task waits for input, until a response recorded from
outside resumes it. :class:`FormResponder` records that response with the same function the
REST API's ``PATCH .../hitlDetails`` calls, so the operator's real ``execute_complete`` runs
and a branch form really branches (marking a branch task success would run both branches).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Answer = tuple[list[str], dict[str, Any]]


@dataclass
class SeenForm:
    dag_id: str
    run_id: str
    task_id: str
    subject: str
    body: str
    answer: Answer


class FormResponder(threading.Thread):
    """Answers each form of ``dag_id`` waiting for input with ``answers[task_id](form)``.

    An answer function gets the form (subject, body) and returns (chosen options, params),
    or None to leave the form waiting (a test can then act first, e.g. record a renewal).
    """

    def __init__(
        self,
        dag_id: str,
        answers: dict[str, Callable[[SeenForm], Answer | None]],
        *,
        give_up_after: float = 120.0,
    ) -> None:
        super().__init__(daemon=True)
        self.dag_id = dag_id
        self.answers = answers
        self.give_up_after = give_up_after
        self.seen: list[SeenForm] = []
        self.errors: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stopped.is_set():
            try:
                self._answer_waiting(give_up=time.monotonic() - started > self.give_up_after)
            except Exception as exc:  # e.g. a locked database: try again, but report it
                self.errors.append(f"responder: {exc!r}")
            time.sleep(0.5)

    def _answer_waiting(self, *, give_up: bool) -> None:
        from airflow import settings
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance

        with settings.Session() as session:
            waiting = (
                session.query(TaskInstance, HITLDetail)
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .filter(TaskInstance.dag_id == self.dag_id, TaskInstance.state == "awaiting_input")
                .all()
            )
            for ti, detail in waiting:
                if give_up:  # a form nobody answers would keep dag.test() waiting forever
                    self.errors.append(f"{ti.task_id}: still waiting after {self.give_up_after}s")
                    ti.set_state("failed", session=session)
                    session.commit()
                    continue
                if detail.response_received or ti.task_id not in self.answers:
                    continue
                form = SeenForm(
                    self.dag_id, ti.run_id, ti.task_id, detail.subject, detail.body, ([], {})
                )
                try:
                    answer = self.answers[ti.task_id](form)
                    if answer is not None:
                        self._respond(session, ti, answer)
                        form.answer = answer
                        self.seen.append(form)
                except Exception as exc:
                    # Fail the task: dag.test() would otherwise wait for this form forever.
                    session.rollback()
                    self.errors.append(f"{ti.task_id}: {exc!r}")
                    ti.set_state("failed", session=session)
                    session.commit()

    def _respond(self, session, ti, answer: Answer) -> None:
        """What ``PATCH .../hitlDetails`` does: store the response and resume the task."""
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail

        update_hitl_detail(
            dag_id=self.dag_id,
            dag_run_id=ti.run_id,
            task_id=ti.task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(
                chosen_options=answer[0], params_input=answer[1]
            ),
            user=SimpleAuthManagerUser(username="bea", role="admin"),
            session=session,
            map_index=ti.map_index,
        )
        session.commit()

    def __enter__(self) -> FormResponder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(10)
