"""Notice and removal dates, the action keys of one decommission, and the guards that stop a
run which is no longer due (a renewal recorded meanwhile, a record that disagrees)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from engagements.config import CommunityConfig
from engagements.store.base import Engagement, EngagementStatus

REMOVAL_DAYS = 14
"""Hubs and cluster are removed within 14 days after the end."""
LATE_NOTICE_DAYS = 7
"""A decommission started late still announces the removal at least a week ahead."""
RETENTION_DAYS = 90
"""The runbook keeps the backup 90 days."""


class NoticeStage(StrEnum):
    BEFORE_END = "before-end"
    AT_END = "at-end"
    AFTER_REMOVAL = "after-removal"


class DecommissionRefused(RuntimeError):
    """This run must not go on: the message says why and that nothing was removed."""


def removal_deadline(end: dt.date) -> dt.date:
    return end + dt.timedelta(days=REMOVAL_DAYS)


def expiry_date(archive_date: dt.date) -> dt.date:
    """The day S3 deletes the archives: lifecycle days count from each object's creation."""
    return archive_date + dt.timedelta(days=RETENTION_DAYS)


MIN_DAYS_KEPT_AFTER_REMOVAL = 30
"""A cluster is removed only while its backup has this many days left; an older archive
(a teardown delayed by review) is made again rather than expire soon after the removal."""


def backup_too_old(expires_on: dt.date, today: dt.date) -> bool:
    """Whether a backup expiring then leaves too little time after a removal today."""
    return (expires_on - today).days < MIN_DAYS_KEPT_AFTER_REMOVAL


def action_key(step: str, end: dt.date) -> str:
    """Store action keys of one decommission: a run for another end date is another one."""
    return f"decommission:{step}:{end.isoformat()}"


def notice_key(stage: NoticeStage, end: dt.date) -> str:
    return f"decommission-notice:{stage.value}:{end.isoformat()}"


class DecommissionCancelled(RuntimeError):
    """A renewal was recorded after the decommission started: stop before removing anything."""

    def __init__(self, community_id: str, end: dt.date, new_end: dt.date) -> None:
        self.new_end = new_end
        super().__init__(
            f"{community_id} was renewed meanwhile: its contract now ends on {new_end}, not "
            f"{end}; the decommission is cancelled and nothing was removed"
        )


def check_still_ending(
    engagement: Engagement,
    end: dt.date,
    current_end: dt.date,
    *,
    statuses: frozenset[EngagementStatus] | None = None,
) -> None:
    """Raise unless the stored engagement still ends on ``end`` and is being decommissioned.

    A renewal recorded by any means (the renewal form, the CLI, Airtable) moves the contract
    end: :class:`DecommissionCancelled`. A status changed by hand without new dates is
    ambiguous, so it stops the run for a person to look (:class:`DecommissionRefused`).
    """
    cid = engagement.community_id
    statuses = statuses or frozenset({EngagementStatus.DECOMMISSIONING})
    if current_end > end:
        raise DecommissionCancelled(cid, end, current_end)
    if current_end != end:
        raise DecommissionRefused(
            f"{cid}'s contract ends on {current_end}, not {end} as this run was told; "
            "nothing was removed"
        )
    if engagement.status not in statuses:
        raise DecommissionRefused(
            f"{cid}'s status is {engagement.status.value}, not "
            f"{' or '.join(sorted(s.value for s in statuses))}. If it was renewed, record the "
            "new contract dates (that cancels this run); if not, set the status back to "
            "Decommissioning and clear this task. Nothing was removed."
        )


def check_identity(conf_community_id: str, engagement: Engagement, config: CommunityConfig) -> None:
    """The run's community, the stored record and the config it would tear down must agree."""
    ids = {
        "run conf": conf_community_id,
        "engagement record": engagement.community_id,
        "community config": config.community_id,
        "cluster": config.cluster_name,
    }
    if len(set(ids.values())) != 1:
        found = ", ".join(f"{k} {v!r}" for k, v in ids.items())
        raise DecommissionRefused(f"community ids disagree ({found}); nothing was removed")
