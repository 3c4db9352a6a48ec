"""Sample context for every email kind, so any template can be previewed from a config alone.

``engagements render-email`` prints these; the email tests render every kind with them. The
values are derived from the config (its contract dates, hubs, milestones), never invented
figures presented as real: cost and check-in previews come from their own modules' samples.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

from engagements.config import CommunityConfig
from engagements.messages.emails import EmailKind


def _signoff(config: CommunityConfig) -> dict[str, Any]:
    from engagements.onboarding import signoff_problems
    from engagements.store.base import Engagement, EngagementStatus

    unsigned = Engagement(config.community_id, config.name, EngagementStatus.CLOSED_WON, {})
    return {"problems": signoff_problems(config, unsigned)}


def _premium(config: CommunityConfig) -> dict[str, Any]:
    from engagements.onboarding import premium_reason

    return {"reason": premium_reason(config) or "preview: access not manageable by 2i2c"}


def _rollout_invitation(config: CommunityConfig) -> dict[str, Any]:
    from engagements.deployment import planned_status

    return {"deployment": planned_status(config.hub_urls)}


def _onboarding(config: CommunityConfig) -> dict[str, Any]:
    from engagements.deployment import planned_status
    from engagements.infra.layout import Layout
    from engagements.infra.values import profile_summaries

    return {
        "deployment": planned_status(config.hub_urls, hubs_by="preview: confirmed deployed"),
        "profiles": profile_summaries(Layout(config)),
    }


def _overdue(config: CommunityConfig) -> dict[str, Any]:
    from engagements.milestones import ONBOARDING_MILESTONES

    first = ONBOARDING_MILESTONES[0]
    due = first.due(config)
    return {
        "store": os.environ.get("ENGAGEMENTS_STORE", "").strip().lower() or "local",
        "milestone": first.title,
        "milestone_key": first.key,
        "due": due,
        "days_overdue": max(0, (dt.datetime.now(dt.UTC).date() - due).days),
        "how": first.how,
    }


def _checkin(config: CommunityConfig) -> dict[str, Any]:
    from engagements.checkin import preview_extra

    return preview_extra(config)


def _cost_alert(config: CommunityConfig) -> dict[str, Any]:
    from engagements.costs import preview_alert_extra

    return preview_alert_extra(config)


def _cost_projection(config: CommunityConfig) -> dict[str, Any]:
    from engagements.costs import preview_projection_extra

    return preview_projection_extra(config)


def _decommission_notice(config: CommunityConfig) -> dict[str, Any]:
    from engagements.decommission.archive import archive_bucket, archive_key, hubs_with_homes
    from engagements.decommission.dates import NoticeStage, expiry_date, removal_deadline

    end = config.contract.end
    return {
        "stage": NoticeStage.BEFORE_END.value,
        "end_date": end,
        "removal_by": removal_deadline(end),
        "backups": [
            {
                "hub": hub,
                "location": f"s3://{archive_bucket(config.cluster_name, hub)}/"
                + archive_key("<username>", end),
                "expires_on": expiry_date(end),
            }
            for hub in hubs_with_homes(config)
        ],
    }


def _renewal_reminder(config: CommunityConfig) -> dict[str, Any]:
    from engagements.renewal import MIN_DECISION_DAYS

    due = config.contract.end + dt.timedelta(days=1)
    return {"deadline": due, "next_reminder": due + dt.timedelta(days=MIN_DECISION_DAYS)}


def _decommission_cancelled(config: CommunityConfig) -> dict[str, Any]:
    return {"end_date": config.contract.end}


def _upkeep_notice(config: CommunityConfig) -> dict[str, Any]:
    """The plan of the example fleet (``include/fleet.yaml``) for this cluster, or for the
    first cluster of it that has work, with the window a notice sent today would give."""
    from engagements.settings import PROJECT_ROOT
    from engagements.upkeep import UpkeepSettings, load_observation, plan, setting_number
    from engagements.upkeep.maintenance import maintenance_window

    today = dt.datetime.now(dt.UTC).date()
    clusters = plan(load_observation(PROJECT_ROOT / "include" / "fleet.yaml"), today)["clusters"]
    chosen = next((c for c in clusters if c["name"] == config.cluster_name and c["actions"]), None)
    actions = (chosen or next(c for c in clusters if c["actions"]))["actions"]
    defaults = UpkeepSettings()
    start, end = maintenance_window(
        today,
        setting_number(defaults, "notice_days", 0),
        setting_number(defaults, "window_days", 1),
    )
    return {"actions": actions, "window_start": start, "window_end": end}


PREVIEWS: dict[EmailKind, Callable[[CommunityConfig], dict[str, Any]]] = {
    EmailKind.ROLLOUT_INVITATION: _rollout_invitation,
    EmailKind.ONBOARDING: _onboarding,
    EmailKind.SIGNOFF_PROBLEMS: _signoff,
    EmailKind.PREMIUM_TIER: _premium,
    EmailKind.MILESTONE_OVERDUE: _overdue,
    EmailKind.CHECKIN_INVITATION: _checkin,
    EmailKind.COST_ALERT: _cost_alert,
    EmailKind.COST_PROJECTION: _cost_projection,
    EmailKind.RENEWAL_REMINDER: _renewal_reminder,
    EmailKind.DECOMMISSION_NOTICE: _decommission_notice,
    EmailKind.DECOMMISSION_CANCELLED: _decommission_cancelled,
    EmailKind.UPKEEP_NOTICE: _upkeep_notice,
}


def preview_extra(kind: EmailKind, config: CommunityConfig) -> dict[str, Any]:
    """The ``extra`` a preview of this kind renders with (empty when the kind needs none)."""
    build = PREVIEWS.get(kind)
    return build(config) if build else {}
