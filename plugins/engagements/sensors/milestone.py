"""Waiting on human milestones recorded in the engagement store."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from engagements.operators.engagement import COMMUNITY_FROM_PARAMS, EngagementMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

DEFAULT_POKE_INTERVAL = int(os.environ.get("ENGAGEMENTS_POKE_INTERVAL", "7200"))
"""Seconds between pokes (two hours), measured by ``scripts/bench_waits.py`` for 1,000 waits.

A poke reads the milestone (one store request); once the milestone is overdue it also reads
the engagement and the action log (three). At 7,200 s, 1,000 waits cost 0.14 requests/second
when on time and 0.42 when all are overdue: within the 0.5/s budget (Airtable allows 5/s per
base) in the worst case. 1,800 s cost 0.56 and 1.66. A recorded milestone is noticed after
58 minutes at the median, 114 at the 95th percentile; marking the ``wait`` task success in the
UI is immediate. For fewer waits, ``ENGAGEMENTS_POKE_INTERVAL`` >= 6 x (number of waits) keeps
the worst case under 0.5/s.
"""
DEFAULT_TIMEOUT = dt.timedelta(days=90)
"""Generous hard limit: the sensor fails only if a milestone is three months late."""


class EngagementSensor(EngagementMixin, BaseSensorOperator):
    """A reschedule-mode sensor on one engagement: holds no worker slot between pokes."""

    template_fields: Sequence[str] = ("community_id",)

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = "smtp_default",
        poke_interval: float = DEFAULT_POKE_INTERVAL,
        timeout: float | dt.timedelta = DEFAULT_TIMEOUT,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        if isinstance(timeout, dt.timedelta):
            timeout = timeout.total_seconds()
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id


class MilestoneSensor(EngagementSensor):
    """Wait until a milestone is recorded done in the store; nag once when it is overdue.

    Reschedule mode: between pokes the task holds no worker slot. An engineer records the
    milestone in the store (Airtable), with ``engagements milestone mark``, or marks this task
    success in the UI (the following ``ConfirmMilestoneOperator`` then records it).
    """

    template_fields: Sequence[str] = ("community_id", "milestone")
    ui_color = "#fde9c4"

    def __init__(self, *, milestone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milestone = milestone

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from engagements.milestones import get_milestone

        record = self.store.get_milestone(self.community_id, self.milestone)
        if record is not None and record.done:
            log.info("%s recorded by %s at %s", self.milestone, record.done_by, record.done_at)
            return PokeReturnValue(
                is_done=True,
                xcom_value={
                    "done_by": record.done_by,
                    "done_at": record.done_at.isoformat() if record.done_at else None,
                    "note": record.note,
                },
            )
        today = dt.datetime.now(dt.UTC).date()
        title = get_milestone(self.milestone).title
        if record is not None and record.overdue(today):
            days = (today - record.due).days
            log.warning("%s is %d day(s) overdue (due %s)", title, days, record.due)
            self._notify_overdue(title, record.due, days)
        else:
            due = f"due {record.due}" if record and record.due else "no deadline"
            log.info("Waiting for %s (%s) for %s", title, due, self.community_id)
        return False

    def _notify_overdue(self, title: str, due: dt.date, days: int) -> None:
        """Email once, naming this DAG's waiting task; a failed notice is retried next poke."""
        from engagements.hooks.smtp import EmailDeliveryError
        from engagements.milestones import get_milestone

        _, config = self.engagement()
        try:
            self.send(
                "milestone-overdue",
                config,
                key=f"overdue:{self.milestone}",
                extra={
                    "milestone": title,
                    "milestone_key": self.milestone,
                    "due": due,
                    "days_overdue": days,
                    "how": get_milestone(self.milestone).how,
                    "task_id": self.task_id,
                    "dag_id": self.dag_id,
                },
            )
        except EmailDeliveryError as exc:
            log.warning("Overdue notice not sent, will try again at the next poke: %s", exc)
