"""Recording a milestone that was completed by marking its sensor success in the UI."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engagements.operators.engagement import _EngagementOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class ConfirmMilestoneOperator(_EngagementOperator):
    """Make sure the store shows the milestone done once its sensor has let the run through."""

    template_fields: Sequence[str] = ("community_id", "milestone")

    def __init__(self, *, milestone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milestone = milestone

    def execute(self, context: Context) -> dict[str, Any]:
        record = self.store.get_milestone(self.community_id, self.milestone)
        if record is None or not record.done:
            record = self.store.record_milestone(
                self.community_id,
                self.milestone,
                by="Airflow UI (waiting task marked success)",
                note=f"recorded by run {context['run_id']}",
            )
            log.info("%s was marked success in the UI; recorded it in the store", self.milestone)
        return {
            "done_by": record.done_by,
            "done_at": record.done_at.isoformat() if record.done_at else None,
        }
