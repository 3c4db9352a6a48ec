"""The start of a decommission and its three notices to the community."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.decommission.base import DecommissionOperator
from engagements.store.base import EngagementStatus
from engagements.tasks.decommission import today

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig

log = logging.getLogger(__name__)


class StartDecommissionOperator(DecommissionOperator):
    """Check the run's community and end date against the store; mark it Decommissioning.

    A run triggered by hand for an Active engagement is accepted when its end date is the
    contract's; a run for an engagement already decommissioned for this end skips.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.decommission.dates import expiry_date, removal_deadline

        if self.action("decommissioned") is not None:
            raise AirflowSkipException(f"{self.community_id} was already decommissioned")
        startable = frozenset(
            {EngagementStatus.ACTIVE, EngagementStatus.RENEWAL, EngagementStatus.DECOMMISSIONING}
        )
        engagement, config = self.checked(startable)
        if engagement.status is not EngagementStatus.DECOMMISSIONING:
            self.store.update_engagement(self.community_id, status=EngagementStatus.DECOMMISSIONING)
            log.warning(
                "%s was %s; now Decommissioning (run triggered by hand)",
                self.community_id,
                engagement.status.value,
            )
        if self.action("started") is None:
            self.record("started", "decommission", {"run_id": context["run_id"]})
        plan = {
            "community_id": self.community_id,
            "end_date": self.end.isoformat(),
            "removal_by": removal_deadline(self.end).isoformat(),
            "buckets": self.archive_plan(config),
            "backup_kept_until": expiry_date(max(self.end, today())).isoformat(),
        }
        log.info("Decommission plan: %s", plan)
        return plan


class DecommissionNoticeOperator(DecommissionOperator):
    """One of the three notices to the representatives (BD in cc), each sent once.

    A run that starts after the end date (no renewal decision by then) does not send the
    "two weeks before the end" notice: it would announce an end already past. The notice at
    the end is worded to be true on the day or later.
    """

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Context) -> str | None:
        from engagements.decommission.dates import NoticeStage, notice_key

        stage = NoticeStage(self.stage)
        if stage is NoticeStage.AFTER_REMOVAL:
            _, config = self.checked(frozenset({EngagementStatus.DECOMMISSIONED}))
            if self.action("cluster-gone") is None:
                raise AirflowFailException(
                    "the removal is not verified; the community is not told it is done"
                )
        else:
            _, config = self.checked()
        if stage is NoticeStage.BEFORE_END and today() >= self.end:
            log.warning("Not sent: the end date %s has passed; notice_at_end says so", self.end)
            return None
        sent = self.send(
            "decommission-notice",
            config,
            key=notice_key(stage, self.end),
            extra={
                "stage": stage.value,
                "end_date": self.end,
                "removal_by": self._removal_by(),
                "backups": self._backups(config),
            },
        )
        return sent.message_id if sent else None

    def _removal_by(self) -> dt.date:
        """The actual removal day once done; else the runbook's, or a week away when late."""
        from engagements.decommission.dates import LATE_NOTICE_DAYS, removal_deadline

        done = self.action("decommissioned")
        if done is not None:
            return dt.date.fromisoformat(done.detail["decommissioned_on"])
        return max(removal_deadline(self.end), today() + dt.timedelta(days=LATE_NOTICE_DAYS))

    def _backups(self, config: CommunityConfig) -> list[dict[str, Any]]:
        """Where each hub's archives are (or will be) and until when they are kept."""
        from engagements.decommission.archive import archive_key
        from engagements.decommission.dates import expiry_date

        archived_on = self.archive_date()
        date = archived_on or max(self.end, today())
        return [
            {
                "hub": hub,
                "location": f"s3://{bucket}/{archive_key('<username>', date)}",
                "expires_on": expiry_date(date),
            }
            for hub, bucket in self.archive_plan(config).items()
        ]
