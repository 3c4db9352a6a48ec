"""Waiting on human milestones recorded in the engagement store."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow.sdk import PokeReturnValue, timezone
from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

from engagements.tasks import EngagementSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.store.base import MilestoneRecord

log = logging.getLogger(__name__)

REMINDER_SPREAD = dt.timedelta(hours=6)
"""Reminders of milestones due the same day wake their tasks spread over the first six hours
of the next day (by a hash of the wait), not all at midnight: 1,000 waits overdue at once
resume at most one every 20 s."""
NOTICE_RETRY = dt.timedelta(hours=1)
"""A notice that could not be sent is tried again this much later."""


class Checked(NamedTuple):
    """What one read of the milestone found."""

    done: PokeReturnValue | None
    """The wait's value when it is over."""
    record: MilestoneRecord | None
    notified: bool | None = None
    """Overdue: whether the notice is sent (now or before); None when not overdue."""


class MilestoneSensor(EngagementSensor):
    """Wait until a milestone is recorded done in the store; notify once when it is overdue.

    Deferrable (the default): the task reads the milestone once, then defers to a
    :class:`~engagements.triggers.milestone.MilestoneTrigger` in the triggerer, which holds the
    wait with no worker slot and no task process; every waiting trigger of the triggerer
    shares one store read per ``milestone_poll_interval`` setting seconds. When the due date
    passes the task resumes once, sends the overdue notice and defers again.

    ``deferrable=False``: a reschedule-mode sensor that reads the milestone every
    ``poke_interval`` seconds, for deployments without a triggerer.

    Either way an engineer records the milestone in the store (Airtable, the portfolio page),
    with ``engagements milestone mark``, or marks this task success in the UI (the following
    ``ConfirmMilestoneOperator`` then records it).
    """

    template_fields: Sequence[str] = ("community_id", "milestone")
    ui_color = "#fde9c4"

    def __init__(self, *, milestone: str, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milestone = milestone
        self.deferrable = deferrable

    # both modes

    def before_check(self, context: Context) -> PokeReturnValue | None:
        """Anything a subclass settles before the milestone is read; a value ends the wait."""
        return None

    def check(self, context: Context) -> Checked:
        """Read the milestone once; when it is overdue, send the notice (once)."""
        from engagements.milestones import get_milestone

        settled = self.before_check(context)
        if settled is not None:
            return Checked(settled, None)
        record = self.store.get_milestone(self.community_id, self.milestone)
        if record is not None and record.done:
            log.info("%s recorded by %s at %s", self.milestone, record.done_by, record.done_at)
            return Checked(PokeReturnValue(is_done=True, xcom_value=_done_value(record)), record)
        today = timezone.utcnow().date()
        title = get_milestone(self.milestone).title
        if record is not None and record.due is not None and record.overdue(today):
            days = (today - record.due).days
            log.warning("%s is %d day(s) overdue (due %s)", title, days, record.due)
            return Checked(None, record, self._notify_overdue(title, record.due, days))
        due = f"due {record.due}" if record and record.due else "no deadline"
        log.info("Waiting for %s (%s) for %s", title, due, self.community_id)
        return Checked(None, record)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        return self.check(context).done or False

    # deferrable

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        return self.check_then_defer(context, waiting_since=timezone.utcnow())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The trigger fired: the milestone was recorded, or it is time to remind."""
        from engagements.triggers.milestone import RECORDED

        if event["status"] == RECORDED:
            log.info("%s recorded by %s at %s", self.milestone, event["done_by"], event["done_at"])
            return {k: event[k] for k in ("done_by", "done_at", "note")}
        since = dt.datetime.fromisoformat(event["waiting_since"])
        return self.check_then_defer(context, waiting_since=since)

    def check_then_defer(self, context: Context, *, waiting_since: dt.datetime) -> Any:
        """Read the milestone once (a milestone already recorded never defers), then defer.

        The trigger reminds when the milestone becomes overdue, or an hour after a notice that
        could not be sent; after a notice, only a recording wakes the task.
        """
        from engagements.triggers.milestone import MilestoneTrigger

        interval = self.setting_seconds("milestone_poll_interval")
        checked_at = timezone.utcnow()
        done, record, notified = self.check(context)
        if done is not None:
            return done.xcom_value
        remaining = self.timeout - (checked_at - waiting_since).total_seconds()
        if remaining <= 0:
            message = (
                f"{self.milestone} was not recorded within {dt.timedelta(seconds=self.timeout)}"
            )
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        if notified is None:  # not overdue (yet)
            remind_at = self._reminder(record.due if record else None)
        else:
            remind_at = None if notified else checked_at + NOTICE_RETRY
        self.defer(
            trigger=MilestoneTrigger(
                community_id=self.community_id,
                milestone=self.milestone,
                store=self.store.reference,
                checked_at=checked_at.isoformat(),
                interval=interval,
                waiting_since=waiting_since.isoformat(),
                remind_at=remind_at.isoformat() if remind_at else None,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=remaining),
        )

    def _reminder(self, due: dt.date | None) -> dt.datetime | None:
        """The start of the day after ``due`` (the first day it is overdue), plus this wait's
        share of :data:`REMINDER_SPREAD`."""
        if due is None:
            return None
        overdue_from = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        digest = hashlib.sha256(f"{self.community_id}/{self.milestone}".encode()).digest()
        share = int.from_bytes(digest[:4]) / 2**32
        return overdue_from + REMINDER_SPREAD * share

    def _notify_overdue(self, title: str, due: dt.date, days: int) -> bool:
        """Email once, naming this DAG's waiting task; False when it could not be sent."""
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
            log.warning("Overdue notice not sent, will try again later: %s", exc)
            return False
        return True


def _done_value(record: MilestoneRecord) -> dict[str, Any]:
    return {
        "done_by": record.done_by,
        "done_at": record.done_at.isoformat() if record.done_at else None,
        "note": record.note,
    }
