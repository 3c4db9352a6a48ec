"""Recording a milestone that was completed by marking its sensor success in the UI."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engagements.tasks import EngagementOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class ConfirmMilestoneOperator(EngagementOperator):
    """Make sure the store shows the milestone done once its sensor has let the run through.

    When the store does not show it yet, a person marked the ``wait`` task success in the UI
    (or over REST): the record names that Airflow user, as Airflow's event log of the state
    change says (read in the API server by :mod:`engagements.listeners`, handed over as the
    wait's XCom). Where that cannot be known, the record says so instead of naming anyone.
    """

    template_fields: Sequence[str] = ("community_id", "milestone")

    def __init__(self, *, milestone: str, wait_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milestone = milestone
        self.wait_task_id = wait_task_id
        """The sensor task this records for; default: the one task upstream."""

    def execute(self, context: Context) -> dict[str, Any]:
        record = self.store.get_milestone(self.community_id, self.milestone)
        if record is None or not record.done:
            by, note = self.marked_by(context)
            record = self.store.record_milestone(
                self.community_id, self.milestone, by=by, note=note
            )
            log.info("%s was marked success in Airflow; recorded as done by %s", self.milestone, by)
        return {
            "done_by": record.done_by,
            "done_at": record.done_at.isoformat() if record.done_at else None,
        }

    def marked_by(self, context: Context) -> tuple[str, str]:
        """(Done by, note) for the store: the Airflow user who marked the wait, or unknown."""
        from engagements.xcoms import MARKED_BY_XCOM

        wait = self.wait_task_id or next(iter(sorted(self.upstream_task_ids)), None)
        ti = context["ti"]
        map_index = getattr(ti, "map_index", None)
        marked = None
        if wait:
            marked = ti.xcom_pull(
                task_ids=wait,
                key=MARKED_BY_XCOM,
                map_indexes=map_index if map_index is not None and map_index >= 0 else None,
            )
        run = f"recorded by run {context['run_id']}"
        if isinstance(marked, dict) and marked.get("user"):
            return (
                f"{marked['user']} (Airflow user)",
                f"marked {wait} success in Airflow at {marked.get('at')}; {run}",
            )
        why = (marked or {}).get("why") if isinstance(marked, dict) else None
        return (
            "unknown Airflow user",
            f"{wait} was marked success in Airflow, by whom is not known: "
            + (why or "no event of the state change was handed over (the API server runs "
               "without the engagement listeners plugin)")
            + f"; {run}",
        )  # fmt: skip
